"""Contract-test cases for the recurrent layers and attention (see test_layer_contract.py)."""
import pyfront as pf

CASES = [
    {"name": "lstm_last", "make": lambda: pf.nn.LSTM(5), "input_shape": (3, 4, 2)},
    {"name": "lstm_sequences_state", "make": lambda: pf.nn.LSTM(
        4, return_sequences=True, return_state=True), "input_shape": (2, 5, 3)},
    {"name": "lstm_go_backwards", "make": lambda: pf.nn.LSTM(
        3, return_sequences=True, go_backwards=True), "input_shape": (2, 4, 3)},
    {"name": "lstm_mask_value", "make": lambda: pf.nn.LSTM(4, mask_value=0.0),
     "input_shape": (3, 5, 2)},
    {"name": "gru_last", "make": lambda: pf.nn.GRU(5), "input_shape": (3, 4, 2)},
    {"name": "gru_sequences_nobias", "make": lambda: pf.nn.GRU(
        3, return_sequences=True, use_bias=False), "input_shape": (2, 4, 3)},
    {"name": "simple_rnn_tanh", "make": lambda: pf.nn.SimpleRNN(
        4, return_sequences=True), "input_shape": (2, 5, 3)},
    {"name": "simple_rnn_relu_state", "make": lambda: pf.nn.SimpleRNN(
        3, activation="relu", return_state=True), "input_shape": (3, 4, 2)},
    {"name": "bidirectional_lstm_concat", "make": lambda: pf.nn.Bidirectional(
        pf.nn.LSTM(3, return_sequences=True)), "input_shape": (2, 4, 3)},
    {"name": "bidirectional_gru_sum", "make": lambda: pf.nn.Bidirectional(
        pf.nn.GRU(4), merge_mode="sum"), "input_shape": (2, 5, 2)},
    {"name": "stacked_lstm_gru", "make": lambda: pf.nn.Sequential([
        pf.nn.LSTM(6, return_sequences=True), pf.nn.GRU(4, return_sequences=True),
        pf.nn.LSTM(3)]), "input_shape": (2, 5, 3)},
    {"name": "lstm_regressor", "make": lambda: pf.nn.Sequential([
        pf.nn.LSTM(8), pf.nn.Dense(1)]), "input_shape": (4, 6, 3)},
    {"name": "multi_head_attention", "make": lambda: pf.nn.MultiHeadAttention(2, 3),
     "input_shape": (2, 4, 6)},
    {"name": "multi_head_attention_causal", "make": lambda: pf.nn.MultiHeadAttention(
        3, 2, value_dim=4, output_dim=5, causal=True), "input_shape": (2, 5, 4)},
]

# torch's constructors (pyfront/nn/torch_recurrent.py): stacked, bidirectional; (output, h_n) or
# (output, (h_n, c_n)). Batch first here: the cases' first dim is the batch (time-major input
# is checked against torch in test_torch_rnn.py)
CASES += [
    {"name": "torch_lstm_stacked_bidirectional", "make": lambda: pf.nn.LSTM(
        3, 4, num_layers=2, bidirectional=True, batch_first=True), "input_shape": (2, 5, 3)},
    {"name": "torch_gru_batch_first", "make": lambda: pf.nn.GRU(
        3, 5, batch_first=True), "input_shape": (2, 4, 3)},
    {"name": "torch_rnn_relu_nobias", "make": lambda: pf.nn.RNN(
        2, 3, num_layers=2, nonlinearity="relu", bias=False, batch_first=True),
     "input_shape": (3, 4, 2)},
]
