"""torch.nn's cells (RNNCell, LSTMCell, GRUCell), MultiheadAttention, the Transformer layers,
Bilinear and ParameterList / ParameterDict under pyfront.nn: given a torch module's state_dict
(copied name for name) they give torch's outputs and gradients, in both layouts and with every
kind of mask; torch's initial draws; dropout only while training; eager equals compiled; save
and load; errors that name the layer and the shapes."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")
# torch's own warnings about its fast paths and about masks of two dtypes (tested on purpose)
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")]

FWD = dict(rtol=1e-5, atol=1e-5)        # float32 against torch's float32
GRAD = dict(rtol=1e-4, atol=2e-5)


def load_torch_state(ours, theirs):
    """Copy torch's state_dict name for name; pyfront's only other entries are the dropout
    generator states (torch's generator is global)."""
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    own = dict(ours.named_tensors())
    assert set(state) <= set(own), set(state) - set(own)
    assert all(k.split(".")[-1] == "rng_state" for k in set(own) - set(state))
    for k, v in state.items():
        assert tuple(own[k].shape) == v.shape, k
    ours.load_state_dict(state, strict=False)
    return ours


def _randomize(theirs, seed=0):
    """Nonzero biases and bias_k / bias_v (torch starts several at zero)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return theirs


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def compare(ours, theirs, inputs, kwargs=None, torch_kwargs=None, grads=True, seed=1):
    """Outputs, input gradients and parameter gradients of ours and theirs on the same
    inputs (numpy arrays; None passes through), against a random weighting of the outputs."""
    kwargs = kwargs or {}
    if torch_kwargs is None:
        torch_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                        for k, v in kwargs.items()}
    px = [None if a is None else pf.tensor(a, requires_grad=grads) for a in inputs]
    tx = [None if a is None else torch.tensor(a, requires_grad=grads) for a in inputs]
    got = [o for o in _as_tuple(ours(*px, **kwargs)) if o is not None]
    want = [o for o in _as_tuple(theirs(*tx, **torch_kwargs)) if o is not None]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **FWD)
    if not grads:
        return
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in got]
    sum((o * pf.tensor(w)).sum() for o, w in zip(got, weights)).backward()
    sum((o * torch.tensor(w)).sum() for o, w in zip(want, weights)).backward()
    for a, b in zip(px, tx):
        if a is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **GRAD)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        expected = theirs_params[name].grad
        expected = np.zeros(p.shape, np.float32) if expected is None else expected.numpy()
        got_grad = np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy()
        np.testing.assert_allclose(got_grad, expected, err_msg=name, **GRAD)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# cells

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("RNNCell", {"bias": False}),
         ("LSTMCell", {}), ("LSTMCell", {"bias": False}), ("GRUCell", {}),
         ("GRUCell", {"bias": False})]


@pytest.mark.parametrize("name,kwargs", CELLS)
@pytest.mark.parametrize("with_state", [False, True], ids=["hx_none", "hx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_cells_are_torchs(name, kwargs, with_state, batched):
    theirs = _randomize(getattr(torch.nn, name)(3, 4, **kwargs))
    ours = load_torch_state(getattr(pf.nn, name)(3, 4, **kwargs), theirs)
    lead = (5,) if batched else ()
    x = _rand(*lead, 3)
    if not with_state:
        compare(ours, theirs, [x])
        return
    h, c = _rand(*lead, 4, seed=1), _rand(*lead, 4, seed=2)
    if name != "LSTMCell":
        compare(ours, theirs, [x, h])
        return
    # the pair (h, c) is one argument: differentiate through it by closures
    ph, pc = pf.tensor(h, requires_grad=True), pf.tensor(c, requires_grad=True)
    th, tc = torch.tensor(h, requires_grad=True), torch.tensor(c, requires_grad=True)
    got = ours(pf.tensor(x), (ph, pc))
    want = theirs(torch.tensor(x), (th, tc))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **FWD)
    (got[0] * 2 + got[1]).sum().backward()
    (want[0] * 2 + want[1]).sum().backward()
    for a, b in ((ph, th), (pc, tc)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **GRAD)


def test_cells_unrolled_over_a_sequence_match_torch_and_the_sequence_layer():
    """A GRUCell stepped over time is torch's GRUCell stepped, and torch's nn.GRU."""
    theirs = _randomize(torch.nn.GRUCell(3, 4))
    ours = load_torch_state(pf.nn.GRUCell(3, 4), theirs)
    x = _rand(2, 6, 3)
    h, th = None, None
    for t in range(6):
        h = ours(pf.tensor(x[:, t]), h)
        th = theirs(torch.tensor(x[:, t]), th)
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), **FWD)
    gru = torch.nn.GRU(3, 4, batch_first=True)
    gru.load_state_dict({k + "_l0": v for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(h.numpy(), gru(torch.tensor(x))[1][0].detach().numpy(), **FWD)


def test_cells_draw_torchs_initial_weights():
    pf.random.seed(0)
    cell = pf.nn.LSTMCell(30, 400)
    bound = 1 / np.sqrt(400)
    assert [k for k, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih",
                                                       "bias_hh"]
    assert tuple(cell.weight_ih.shape) == (1600, 30)
    assert tuple(cell.weight_hh.shape) == (1600, 400)
    for p in cell.parameters():
        values = p.numpy()
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.95 * bound
    assert pf.nn.GRUCell(3, 4, bias=False).bias_ih is None


# ---------------------------------------------------------------------------------------------
# MultiheadAttention

def _mha_pair(seed=0, **kwargs):
    theirs = _randomize(torch.nn.MultiheadAttention(8, 2, **kwargs), seed)
    return load_torch_state(pf.nn.MultiheadAttention(8, 2, **kwargs), theirs), theirs


def _seq(batch_first, n, length, features, seed):
    return _rand(n, length, features, seed=seed) if batch_first else \
        _rand(length, n, features, seed=seed)


MHA_CONFIGS = [{}, {"batch_first": True}, {"kdim": 3, "vdim": 5}, {"bias": False},
               {"add_bias_kv": True}, {"add_zero_attn": True, "batch_first": True},
               {"add_bias_kv": True, "add_zero_attn": True, "kdim": 6, "vdim": 4}]


@pytest.mark.parametrize("config", MHA_CONFIGS, ids=lambda c: "-".join(c) or "default")
def test_multihead_attention_is_torchs(config):
    ours, theirs = _mha_pair(**config)
    bf = config.get("batch_first", False)
    q = _seq(bf, 3, 4, 8, 0)
    k = _seq(bf, 3, 6, config.get("kdim", 8), 1)
    v = _seq(bf, 3, 6, config.get("vdim", 8), 2)
    compare(ours, theirs, [q, k, v])
    compare(ours, theirs, [q, k, v], {"average_attn_weights": False})


def test_multihead_attention_self_attention_and_need_weights_false():
    ours, theirs = _mha_pair(batch_first=True)
    x = _rand(2, 5, 8)
    px, tx = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, weights = ours(px, px, px, need_weights=False)
    want, _ = theirs(tx, tx, tx, need_weights=False)
    assert weights is None
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), **FWD)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), **GRAD)


def _masks(n=3, lq=4, ls=6, heads=2):
    rng = np.random.default_rng(5)
    padding = rng.random((n, ls)) < 0.4
    padding[:, 0] = False                      # every query keeps a key
    causal = np.triu(np.ones((lq, ls), bool), 1)
    return {
        "bool_key_padding": {"key_padding_mask": padding},
        "float_key_padding": {"key_padding_mask": np.where(padding, -np.inf, 0.0)
                              .astype(np.float32)},
        "bool_attn": {"attn_mask": causal},
        "float_attn": {"attn_mask": rng.standard_normal((lq, ls)).astype(np.float32)},
        "attn_per_head": {"attn_mask": rng.standard_normal((n * heads, lq, ls))
                          .astype(np.float32)},
        "bool_both": {"attn_mask": causal, "key_padding_mask": padding},
        "float_both": {"attn_mask": np.where(causal, -np.inf, 0.0).astype(np.float32),
                       "key_padding_mask": rng.standard_normal((n, ls)).astype(np.float32)},
    }


@pytest.mark.parametrize("mask", list(_masks()))
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("extra", [{}, {"add_bias_kv": True, "add_zero_attn": True}],
                         ids=["plain", "extra_keys"])
def test_multihead_attention_masks_are_torchs(mask, batch_first, extra):
    ours, theirs = _mha_pair(batch_first=batch_first, **extra)
    q, kv = _seq(batch_first, 3, 4, 8, 0), _seq(batch_first, 3, 6, 8, 1)
    compare(ours, theirs, [q, kv, kv], _masks()[mask])


def test_multihead_attention_unbatched_inputs_are_torchs():
    ours, theirs = _mha_pair(kdim=3, vdim=5)
    q, k, v = _rand(4, 8), _rand(6, 3, seed=1), _rand(6, 5, seed=2)
    compare(ours, theirs, [q, k, v])
    padding = np.array([False, True, False, False, True, False])
    compare(ours, theirs, [q, k, v], {"key_padding_mask": padding,
                                      "attn_mask": _rand(2, 4, 6, seed=3)})


def test_is_causal_is_a_hint_about_the_mask_given():
    ours, theirs = _mha_pair(batch_first=True)
    x = _rand(2, 5, 8)
    mask = pf.nn.Transformer.generate_square_subsequent_mask(5)
    np.testing.assert_array_equal(mask.numpy(),
                                  torch.nn.Transformer.generate_square_subsequent_mask(5).numpy())
    compare(ours, theirs, [x, x, x], {"attn_mask": mask.numpy(), "is_causal": True,
                                      "need_weights": False})
    with pytest.raises(pf.PyfrontError, match="is_causal .* needs that mask"):
        ours(pf.tensor(x), pf.tensor(x), pf.tensor(x), is_causal=True)


def test_every_key_masked_gives_the_mean_of_the_values_not_nan():
    """The one documented difference: torch's -inf gives NaN for a query with no key left;
    pyfront's -1e9 gives it the average of the values, as pf.nn.MultiHeadAttention does."""
    ours, _ = _mha_pair(batch_first=True)
    x = pf.tensor(_rand(1, 3, 8))
    out, weights = ours(x, x, x, key_padding_mask=np.ones((1, 3), bool))
    assert np.isfinite(out.numpy()).all()
    np.testing.assert_allclose(weights.numpy(), np.full((1, 3, 3), 1 / 3), rtol=1e-6)


def test_multihead_attention_draws_torchs_initial_weights():
    pf.random.seed(0)
    e = 64
    layer = pf.nn.MultiheadAttention(e, 4, add_bias_kv=True)
    assert [k for k, _ in layer.named_parameters()] == [
        "in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj.weight",
        "out_proj.bias"]
    limit = np.sqrt(6 / (e + 3 * e))             # xavier_uniform of (3e, e)
    w = layer.in_proj_weight.numpy()
    assert w.shape == (3 * e, e) and limit * 0.95 < np.abs(w).max() <= limit
    assert not layer.in_proj_bias.numpy().any() and not layer.out_proj.bias.numpy().any()
    bound = 1 / np.sqrt(e)                       # torch.nn.Linear's draw for out_proj
    assert bound * 0.95 < np.abs(layer.out_proj.weight.numpy()).max() <= bound
    assert abs(layer.bias_k.numpy().std() - np.sqrt(1 / e)) < 0.4 * np.sqrt(1 / e)
    separate = pf.nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert separate.in_proj_weight is None
    assert [tuple(getattr(separate, k).shape) for k in
            ("q_proj_weight", "k_proj_weight", "v_proj_weight")] == [(8, 8), (8, 3), (8, 5)]


# ---------------------------------------------------------------------------------------------
# transformer layers

E, HEADS, FF = 8, 2, 16
LAYER_CONFIGS = [{}, {"batch_first": True}, {"norm_first": True, "activation": "gelu"},
                 {"bias": False, "batch_first": True}, {"layer_norm_eps": 1e-3}]


def _layer_ids(c):
    return "-".join("%s=%s" % kv for kv in c.items()) or "default"


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=_layer_ids)
def test_transformer_encoder_layer_is_torchs(config):
    theirs = _randomize(torch.nn.TransformerEncoderLayer(E, HEADS, FF, 0.0, **config))
    ours = load_torch_state(pf.nn.TransformerEncoderLayer(E, HEADS, FF, 0.0, **config), theirs)
    bf = config.get("batch_first", False)
    x = _seq(bf, 3, 5, E, 0)
    masks = _masks(3, 5, 5)
    compare(ours, theirs, [x])
    compare(ours, theirs, [x], {"src_mask": masks["bool_attn"]["attn_mask"],
                                "src_key_padding_mask": masks["bool_key_padding"]
                                ["key_padding_mask"]})
    causal = pf.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    compare(ours, theirs, [x], {"src_mask": causal, "is_causal": True})
    compare(ours, theirs, [x[:, 0] if bf else x[0]])          # unbatched


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=_layer_ids)
def test_transformer_decoder_layer_is_torchs(config):
    theirs = _randomize(torch.nn.TransformerDecoderLayer(E, HEADS, FF, 0.0, **config))
    ours = load_torch_state(pf.nn.TransformerDecoderLayer(E, HEADS, FF, 0.0, **config), theirs)
    bf = config.get("batch_first", False)
    tgt, memory = _seq(bf, 3, 4, E, 0), _seq(bf, 3, 6, E, 1)
    masks = _masks(3, 4, 6)
    causal = pf.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    compare(ours, theirs, [tgt, memory])
    compare(ours, theirs, [tgt, memory],
            {"tgt_mask": causal, "memory_mask": masks["float_attn"]["attn_mask"],
             "tgt_key_padding_mask": masks["bool_key_padding"]["key_padding_mask"][:, :4],
             "memory_key_padding_mask": masks["bool_key_padding"]["key_padding_mask"],
             "tgt_is_causal": True})


def test_transformer_encoder_and_decoder_stacks_are_torchs():
    layer = torch.nn.TransformerEncoderLayer(E, HEADS, FF, 0.0, batch_first=True)
    theirs = _randomize(torch.nn.TransformerEncoder(layer, 3, torch.nn.LayerNorm(E),
                                                    enable_nested_tensor=False))
    theirs.norm = None                  # pyfront.nn.LayerNorm names its parameters gamma, beta
    ours = load_torch_state(pf.nn.TransformerEncoder(
        pf.nn.TransformerEncoderLayer(E, HEADS, FF, 0.0, batch_first=True), 3), theirs)
    x = _rand(2, 5, E)
    padding = _masks(2, 5, 5)["bool_key_padding"]["key_padding_mask"]
    compare(ours, theirs, [x], {"src_key_padding_mask": padding})
    dec_layer = torch.nn.TransformerDecoderLayer(E, HEADS, FF, 0.0, norm_first=True)
    theirs = _randomize(torch.nn.TransformerDecoder(dec_layer, 2))
    ours = load_torch_state(pf.nn.TransformerDecoder(
        pf.nn.TransformerDecoderLayer(E, HEADS, FF, 0.0, norm_first=True), 2), theirs)
    tgt, memory = _rand(4, 2, E), _rand(6, 2, E, seed=1)
    causal = pf.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    compare(ours, theirs, [tgt, memory], {"tgt_mask": causal})


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
def test_transformer_is_torchs(batch_first):
    config = dict(d_model=E, nhead=HEADS, num_encoder_layers=2, num_decoder_layers=2,
                  dim_feedforward=FF, dropout=0.0, batch_first=batch_first)
    theirs = _randomize(torch.nn.Transformer(**config))
    ours = load_torch_state(pf.nn.Transformer(**config), theirs)
    src, tgt = _seq(batch_first, 2, 6, E, 0), _seq(batch_first, 2, 4, E, 1)
    causal = pf.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    padding = _masks(2, 4, 6)["bool_key_padding"]["key_padding_mask"]
    compare(ours, theirs, [src, tgt], {"tgt_mask": causal, "src_key_padding_mask": padding,
                                       "memory_key_padding_mask": padding})


def test_encoder_copies_the_layer_as_torch_does():
    pf.random.seed(0)
    layer = pf.nn.TransformerEncoderLayer(E, HEADS, FF, 0.2)
    encoder = pf.nn.TransformerEncoder(layer, 3)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first is not second
    for (name, a), (_, b) in zip(first.named_parameters(), second.named_parameters()):
        assert a is not b and np.array_equal(a.numpy(), b.numpy()), name
    with pf.no_grad():
        first.linear1.weight.copy_(np.zeros((FF, E), np.float32))
    assert second.linear1.weight.numpy().any() and layer.linear1.weight.numpy().any()
    assert len(encoder.parameters()) == 3 * len(layer.parameters())
    seeds = {m.rng_state.numpy()[0] for m in encoder.modules() if isinstance(m, pf.nn.Dropout)}
    assert len(seeds) == 9                # every copy draws its own dropout masks


def test_a_layer_that_ran_deep_copies():
    """copy.deepcopy (what TransformerEncoder does, and torch users do) of a layer whose
    tensors have been through eager calls: the copy has memory and gradients of its own."""
    import copy

    layer = pf.nn.TransformerEncoderLayer(E, HEADS, FF, 0.0)
    x = pf.tensor(_rand(3, 2, E))
    layer(x).sum().backward()
    clone = copy.deepcopy(layer)
    assert isinstance(clone.linear1.weight, pf.nn.Parameter)
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    np.testing.assert_array_equal(clone.linear1.weight.grad.numpy(),
                                  layer.linear1.weight.grad.numpy())
    with pf.no_grad():
        clone.linear1.weight.copy_(np.zeros((FF, E), np.float32))
    assert layer.linear1.weight.numpy().any()
    stack = pf.nn.TransformerEncoder(layer, 2)
    np.testing.assert_array_equal(stack.layers[1].linear2.bias.numpy(),
                                  layer.linear2.bias.numpy())


def test_transformer_draws_xavier_weights_and_torchs_names():
    pf.random.seed(0)
    model = pf.nn.Transformer(64, 4, 1, 1, 128, 0.0)
    torch_names = list(torch.nn.Transformer(64, 4, 1, 1, 128, 0.0).state_dict())
    assert [k for k in model.state_dict() if not k.endswith("rng_state")] == torch_names
    w = model.encoder.layers[0].linear1.weight.numpy()          # (128, 64)
    limit = np.sqrt(6 / (64 + 128))
    assert limit * 0.95 < np.abs(w).max() <= limit
    norm = model.decoder.norm
    assert not norm.bias.numpy().any() and (norm.weight.numpy() == 1).all()


def test_dropout_acts_only_while_training():
    pf.random.seed(0)
    theirs = torch.nn.TransformerEncoderLayer(E, HEADS, FF, 0.5, batch_first=True)
    ours = load_torch_state(pf.nn.TransformerEncoderLayer(E, HEADS, FF, 0.5, batch_first=True),
                            theirs)
    x = pf.tensor(_rand(2, 5, E))
    ours.eval()
    theirs.eval()
    evaluated = ours(x).numpy()
    np.testing.assert_allclose(evaluated, theirs(torch.tensor(x.numpy())).detach().numpy(),
                               **FWD)
    np.testing.assert_array_equal(ours(x).numpy(), evaluated)
    ours.train()
    before = ours.self_attn.rng_state.numpy().copy()
    a, b = ours(x).numpy(), ours(x).numpy()
    assert not np.allclose(a, evaluated) and not np.allclose(a, b)
    assert ours.self_attn.rng_state.numpy()[1] > before[1]      # the generator advanced
    attention = pf.nn.MultiheadAttention(E, HEADS, dropout=0.5, batch_first=True)
    _, weights = attention(x, x, x, average_attn_weights=False)
    w = weights.numpy()
    assert (w == 0).any() and np.isclose(w.sum(-1).mean(), 1, atol=0.3)
    attention.eval()
    _, weights = attention(x, x, x)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# compiled, saved, loaded

def _layers():
    pf.random.seed(3)
    return {
        "lstm_cell": (pf.nn.LSTMCell(3, 4), lambda m, x: m(x[0, :, :3])),
        "mha_masks": (pf.nn.MultiheadAttention(E, HEADS, dropout=0.3, add_bias_kv=True),
                      lambda m, x, kpm: m(x, x, x, key_padding_mask=kpm)),
        "encoder": (pf.nn.TransformerEncoder(pf.nn.TransformerEncoderLayer(
            E, HEADS, FF, 0.3, activation="gelu"), 2),
            lambda m, x, kpm: m(x, src_key_padding_mask=kpm)),
        "transformer": (pf.nn.Transformer(E, HEADS, 1, 1, FF, 0.3),
                        lambda m, x, kpm: m(x, x, src_key_padding_mask=kpm,
                                            tgt_mask=np.triu(np.ones((5, 5), bool), 1))),
    }


def _states(model):
    return {k: v.numpy().copy() for k, v in model.named_tensors() if k.endswith("rng_state")}


@pytest.mark.parametrize("name", ["lstm_cell", "mha_masks", "encoder", "transformer"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_eager_equals_compiled_with_gradients(name, training):
    model, call = _layers()[name]
    model.train(training)
    x = _rand(5, 2, E)
    kpm = np.zeros((2, 5), bool)
    kpm[1, 3:] = True
    args = [x, kpm][:call.__code__.co_argcount - 1]
    start = _states(model)
    eager_in = [pf.tensor(a, requires_grad=a.dtype == np.float32) for a in args]
    eager = _as_tuple(call(model, *eager_in))
    sum(o.sum() for o in eager if o is not None).backward()
    eager_grads = {k: p.grad.numpy().copy() for k, p in model.named_parameters()
                   if p.grad is not None}
    model.zero_grad()
    model.load_state_dict(start, strict=False)         # the same dropout masks again
    compiled_fn = pf.jit(lambda *a: call(model, *a))
    compiled_in = [pf.tensor(a, requires_grad=a.dtype == np.float32) for a in args]
    compiled = _as_tuple(compiled_fn(*compiled_in))
    sum(o.sum() for o in compiled if o is not None).backward()
    for a, b in zip(eager, compiled):
        if a is not None:
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(compiled_in[0].grad.numpy(), eager_in[0].grad.numpy(),
                               rtol=1e-4, atol=1e-5)
    for k, p in model.named_parameters():
        if k in eager_grads:
            np.testing.assert_allclose(p.grad.numpy(), eager_grads[k], rtol=1e-4, atol=1e-5,
                                       err_msg=k)


def test_hybridized_transformer_trains_like_the_eager_one():
    pf.random.seed(4)
    model = pf.nn.TransformerEncoderLayer(E, HEADS, FF, 0.0, batch_first=True)
    hybrid = model.hybridize()
    x, target = pf.tensor(_rand(4, 3, E)), pf.tensor(_rand(4, 3, E, seed=1))
    opt = pf.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = pf.losses.mse(hybrid(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with pf.no_grad():
        np.testing.assert_allclose(hybrid(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["cell", "mha", "encoder_layer", "encoder", "decoder",
                                  "transformer", "bilinear"])
def test_save_and_load_keep_the_class_and_the_numbers(name, tmp_path):
    pf.random.seed(5)
    dec = pf.nn.TransformerDecoderLayer(E, HEADS, FF, 0.1, norm_first=True, bias=False)
    make = {
        "cell": (lambda: pf.nn.RNNCell(E, 4, nonlinearity="relu"), 1),
        "mha": (lambda: pf.nn.MultiheadAttention(E, HEADS, 0.1, kdim=5, vdim=3,
                                                 add_zero_attn=True), 3),
        "encoder_layer": (lambda: pf.nn.TransformerEncoderLayer(E, HEADS, FF), 1),
        "encoder": (lambda: pf.nn.TransformerEncoder(pf.nn.TransformerEncoderLayer(
            E, HEADS, FF, batch_first=True), 2, pf.nn.LayerNorm(E)), 1),
        "decoder": (lambda: pf.nn.TransformerDecoder(dec, 2), 2),
        "transformer": (lambda: pf.nn.Transformer(E, HEADS, 1, 2, FF, activation="gelu"), 2),
        "bilinear": (lambda: pf.nn.Bilinear(E, 3, 2), 2),
    }[name]
    model = make[0]().eval()
    shapes = {"mha": [(4, 2, E), (6, 2, 5), (6, 2, 3)], "bilinear": [(2, 4, E), (2, 4, 3)],
              "cell": [(3, E)]}.get(name, [(4, 2, E), (6, 2, E)][:make[1]])
    inputs = [pf.tensor(_rand(*s, seed=i)) for i, s in enumerate(shapes)]
    want = _as_tuple(model(*inputs))
    path = pf.save(model, str(tmp_path / "m.pf"))
    again = pf.load(path)
    assert type(again) is type(model)
    got = _as_tuple(again(*inputs))
    for a, b in zip(want, got):
        np.testing.assert_array_equal(b.numpy(), a.numpy())
    # training resumes with the saved generator states: the same masks as the original
    model.train()
    again.train()
    for a, b in zip(_as_tuple(model(*inputs)), _as_tuple(again(*inputs))):
        np.testing.assert_array_equal(b.numpy(), a.numpy())


def test_a_callable_activation_saves_as_a_graph(tmp_path):
    pf.random.seed(6)
    model = pf.nn.TransformerEncoderLayer(E, HEADS, FF, activation=pf.silu).eval()
    x = pf.tensor(_rand(3, 2, E))
    theirs = torch.nn.TransformerEncoderLayer(E, HEADS, FF, activation=torch.nn.functional.silu)
    load_torch_state(model, theirs.eval())
    np.testing.assert_allclose(model(x).numpy(), theirs(torch.tensor(x.numpy())).detach()
                               .numpy(), **FWD)
    again = pf.load(pf.save(model, str(tmp_path / "silu.pf")))
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())


# ---------------------------------------------------------------------------------------------
# Bilinear, ParameterList, ParameterDict

@pytest.mark.parametrize("lead", [(), (5,), (2, 3)], ids=["unbatched", "batch", "two_dims"])
def test_bilinear_is_torchs(lead):
    theirs = torch.nn.Bilinear(4, 3, 2)
    ours = load_torch_state(pf.nn.Bilinear(4, 3, 2), theirs)
    compare(ours, theirs, [_rand(*lead, 4), _rand(*lead, 3, seed=1)])
    pf.random.seed(0)
    layer = pf.nn.Bilinear(100, 3, 50)
    bound = 1 / np.sqrt(100)
    assert tuple(layer.weight.shape) == (50, 100, 3)
    assert bound * 0.95 < np.abs(layer.weight.numpy()).max() <= bound


def test_parameter_containers_register_their_parameters():
    class Net(pf.nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = pf.nn.ParameterList([np.ones(3, np.float32),
                                               pf.tensor(np.ones(3, np.float32))])
            self.offsets = pf.nn.ParameterDict({"a": np.zeros(3, np.float32)})
            self.offsets["b"] = pf.nn.Parameter(np.zeros(3, np.float32))

        def forward(self, x):
            for s in self.scales:
                x = x * s
            return x + self.offsets["a"] + self.offsets["b"]

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = torch.nn.ParameterList([torch.ones(3), torch.ones(3)])
            self.offsets = torch.nn.ParameterDict({"a": torch.zeros(3), "b": torch.zeros(3)})

    net = Net()
    assert list(net.state_dict()) == list(TorchNet().state_dict()) == [
        "scales.0", "scales.1", "offsets.a", "offsets.b"]
    assert len(net.scales) == 2 and isinstance(net.scales[1], pf.nn.Parameter)
    assert pf.nn.ParameterList([np.ones(2)])[0].dtype.name == "float64"     # kept
    assert "a" in net.offsets and net.offsets.keys() == ["a", "b"]
    opt = pf.optim.SGD(net.parameters(), lr=0.1)
    assert len(net.parameters()) == 4
    x = pf.tensor(np.ones((2, 3), np.float32))
    opt.zero_grad()
    (net(x) ** 2).sum().backward()
    opt.step()
    assert not np.array_equal(net.offsets["a"].numpy(), np.zeros(3))
    del net.offsets["b"]
    assert list(net.state_dict()) == ["scales.0", "scales.1", "offsets.a"]
    net.scales.append(np.full(3, 2.0, np.float32))
    assert net.state_dict()["scales.2"].tolist() == [2.0] * 3 and net.scales[-1] is \
        net.scales[2]
    with pytest.raises(KeyError, match="without '.'"):
        net.offsets["a.b"] = np.ones(3, np.float32)
    with pytest.raises(KeyError, match="attribute"):
        net.offsets["keys"] = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="ParameterList holds parameters"):
        net.scales.append("not a tensor")
    with pytest.raises(TypeError, match="not called"):
        net.scales(x)


# ---------------------------------------------------------------------------------------------
# errors

def _raises(fn, *parts):
    with pytest.raises((pf.ShapeError, pf.PyfrontError, ValueError, TypeError)) as err:
        fn()
    for part in parts:
        assert part in str(err.value), str(err.value)


def test_bad_shapes_name_the_layer_and_the_shapes():
    t = pf.tensor
    cell = pf.nn.LSTMCell(3, 4, name="cell")
    _raises(lambda: cell(t(_rand(2, 5))), "LSTMCell 'cell'", "(2, 5)")
    _raises(lambda: cell(t(_rand(2, 3)), (t(_rand(3, 4)), t(_rand(3, 4)))), "'cell'",
            "(3, 4)", "(2, 4)")
    _raises(lambda: pf.nn.GRUCell(3, 4)(t(_rand(3)), t(_rand(2, 4))), "(2, 4)", "(4,)")
    mha = pf.nn.MultiheadAttention(8, 2, name="attn")
    q = t(_rand(4, 2, 8))
    _raises(lambda: mha(q, t(_rand(5, 3, 8)), t(_rand(5, 3, 8))), "'attn'", "(5, 3, 8)")
    _raises(lambda: mha(q, q, t(_rand(4, 2, 7))), "(4, 2, 7)")
    _raises(lambda: mha(q, q, q, attn_mask=np.zeros((4, 5), bool)), "'attn'", "attn_mask",
            "(4, 5)", "(4, 4)")
    _raises(lambda: mha(q, q, q, key_padding_mask=np.zeros((3, 4), bool)), "key_padding_mask",
            "(2, 4)", "(3, 4)")
    _raises(lambda: mha(q, q, q, attn_mask=np.zeros((4, 4), np.int64)), "bool or float")
    encoder = pf.nn.TransformerEncoder(pf.nn.TransformerEncoderLayer(8, 2, 16), 2,
                                       name="enc")
    _raises(lambda: encoder(t(_rand(3, 2, 6))), "TransformerEncoderLayer 'enc/layers.0'",
            "(3, 2, 6)")
    model = pf.nn.Transformer(8, 2, 1, 1, 16, batch_first=True, name="tf")
    _raises(lambda: model(t(_rand(2, 3, 8)), t(_rand(3, 3, 8))), "Transformer 'tf'",
            "(2, 3, 8)", "(3, 3, 8)")
    _raises(lambda: pf.nn.Bilinear(3, 2, 4, name="bi")(t(_rand(5, 3)), t(_rand(4, 2))),
            "Bilinear 'bi'", "(5, 3)", "(4, 2)")


def test_bad_arguments_are_refused_by_name():
    _raises(lambda: pf.nn.MultiheadAttention(10, 3), "divisible")
    _raises(lambda: pf.nn.MultiheadAttention(8, 0), "num_heads must be a positive int")
    _raises(lambda: pf.nn.RNNCell(3, 4, nonlinearity="sigmoid"), "nonlinearity")
    _raises(lambda: pf.nn.TransformerEncoderLayer(8, 2, activation="swish"), "activation")
    _raises(lambda: pf.nn.TransformerEncoderLayer(8, 2, dropout=1.5), "rate")
    _raises(lambda: pf.nn.TransformerEncoder("layer", 2), "must be a Module")
    _raises(lambda: pf.nn.Bilinear(0, 2, 3), "in1_features")
