"""Contract-test cases for torch.nn's cells, attention and transformer layers and Bilinear (see
test_layer_contract.py). Layers that take several inputs run inside a small module that feeds
them from the one input; dropout is 0 so that a training step's loss is comparable."""
import pyfront as pf


class _SelfAttention(pf.nn.Module):
    """MultiheadAttention over x (query = key = value, or key and value cut from x's features
    for kdim / vdim), returning the output and the attention weights."""

    def __init__(self, attention, kdim=None, vdim=None):
        super().__init__()
        self.attention, self.kdim, self.vdim = attention, kdim, vdim

    def forward(self, x):
        key = x if self.kdim is None else x[..., :self.kdim]
        value = x if self.vdim is None else x[..., -self.vdim:]
        return self.attention(x, key, value)


class _OverItself(pf.nn.Module):
    """A layer taking (target, memory) or (input1, input2) called with x and tanh(x)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x, pf.tanh(x))


def _encoder_layer(**kwargs):
    return pf.nn.TransformerEncoderLayer(8, 2, 16, 0.0, **kwargs)


def _decoder_layer(**kwargs):
    return pf.nn.TransformerDecoderLayer(8, 2, 16, 0.0, **kwargs)


CASES = [
    {"name": "torch_rnn_cell_tanh", "make": lambda: pf.nn.RNNCell(3, 4), "input_shape": (2, 3)},
    {"name": "torch_rnn_cell_relu_nobias", "make": lambda: pf.nn.RNNCell(
        3, 4, bias=False, nonlinearity="relu"), "input_shape": (3, 3)},
    {"name": "torch_lstm_cell", "make": lambda: pf.nn.LSTMCell(3, 4), "input_shape": (2, 3)},
    {"name": "torch_gru_cell", "make": lambda: pf.nn.GRUCell(4, 3), "input_shape": (2, 4)},
    {"name": "torch_bilinear", "make": lambda: _OverItself(pf.nn.Bilinear(5, 5, 3)),
     "input_shape": (4, 5)},
    {"name": "torch_multihead_attention_seq_first", "make": lambda: _SelfAttention(
        pf.nn.MultiheadAttention(6, 2)), "input_shape": (4, 2, 6)},
    {"name": "torch_multihead_attention_batch_first_kdim_vdim", "make": lambda: _SelfAttention(
        pf.nn.MultiheadAttention(6, 3, kdim=4, vdim=5, batch_first=True), kdim=4, vdim=5),
     "input_shape": (2, 4, 6)},
    {"name": "torch_multihead_attention_bias_kv_zero_attn", "make": lambda: _SelfAttention(
        pf.nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True,
                                 batch_first=True)), "input_shape": (2, 3, 4)},
    {"name": "torch_transformer_encoder_layer_seq_first", "make": _encoder_layer,
     "input_shape": (5, 2, 8)},
    {"name": "torch_transformer_encoder_layer_norm_first_gelu", "make": lambda: _encoder_layer(
        batch_first=True, norm_first=True, activation="gelu"), "input_shape": (2, 5, 8)},
    {"name": "torch_transformer_encoder", "make": lambda: pf.nn.TransformerEncoder(
        _encoder_layer(batch_first=True), 2, pf.nn.LayerNorm(8)), "input_shape": (2, 4, 8)},
    {"name": "torch_transformer_decoder_layer", "make": lambda: _OverItself(
        _decoder_layer(batch_first=True)), "input_shape": (2, 4, 8)},
    {"name": "torch_transformer_decoder_norm_first", "make": lambda: _OverItself(
        pf.nn.TransformerDecoder(_decoder_layer(norm_first=True), 2)),
     "input_shape": (4, 2, 8)},
    {"name": "torch_transformer", "make": lambda: _OverItself(pf.nn.Transformer(
        8, 2, 1, 1, 16, 0.0, batch_first=True)), "input_shape": (2, 3, 8)},
]
