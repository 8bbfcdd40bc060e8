"""Models built by PyTorch with random weights and exported by torch.onnx (the TorchScript
exporter, opset 17, batch dimension dynamic): the import side's reference inputs."""
import io
import warnings

import numpy as np


def _torch():
    import torch

    return torch


def mlp():
    nn = _torch().nn
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10)), (64,)


def reference_cnn():
    """The benchmarks' reference CNN (benchmarks/bench_cnn.py) on 1x28x28 images."""
    nn = _torch().nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10)), (1, 28, 28)


def _residual_cnn_class():
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(x + self.bn2(self.conv2(y)))

    class ResidualCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                      nn.ReLU())
            self.block1 = Block(8)
            self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.block2 = Block(16)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(16, 5)

        def forward(self, x):
            x = self.block2(torch.relu(self.down(self.block1(self.stem(x)))))
            return self.head(torch.flatten(self.pool(x), 1))

    return ResidualCNN


def residual_cnn():
    model = _residual_cnn_class()()
    # running statistics that are not the identity, so inference-form BatchNorm is tested
    for m in model.modules():
        if type(m).__name__ == "BatchNorm2d":
            g = _torch().Generator().manual_seed(m.num_features)
            m.running_mean.copy_(_torch().randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(_torch().rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(_torch().rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(_torch().randn(m.num_features, generator=g) * 0.1)
    return model, (3, 12, 12)


def recurrent():
    torch = _torch()
    nn = torch.nn

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(6, 12, batch_first=True)
            self.lstm = nn.LSTM(12, 8, batch_first=True, bidirectional=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            y, _ = self.gru(x)
            y, (h, _) = self.lstm(y)
            return self.head(y[:, -1])

    return Recurrent(), (7, 6)


def transformer():
    torch = _torch()
    nn = torch.nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(8, 16)
            layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.encoder(self.embed(x)).mean(dim=1))

    return Encoder(), (10, 8)


def causal_transformer():
    """Pre-norm encoder layers with GELU, a learned position table and a causal mask (Trilu,
    Where, Expand and the exact-GELU chain in the exported graph)."""
    torch = _torch()
    nn = torch.nn

    class CausalEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.position = nn.Parameter(torch.randn(1, 10, 16) * 0.1)
            self.mask = nn.Transformer.generate_square_subsequent_mask(10)

        def forward(self, x):
            return self.encoder(x + self.position, mask=self.mask, is_causal=True)

    return CausalEncoder(), (10, 16)


def separable_cnn():
    nn = _torch().nn

    def separable(cin, cout, stride):
        return [nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin),
                nn.BatchNorm2d(cin), nn.ReLU6(), nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout),
                nn.ReLU()]

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), *separable(8, 16, 2),
                          *separable(16, 32, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Dropout(0.2), nn.Linear(32, 6))
    return model, (3, 16, 16)


MODELS = {"mlp": mlp, "reference_cnn": reference_cnn, "residual_cnn": residual_cnn,
          "recurrent": recurrent, "transformer": transformer,
          "causal_transformer": causal_transformer, "separable_cnn": separable_cnn}


def export(name, seed=0, opset=17):
    """(ONNX bytes, example input shape without the batch) of MODELS[name], random weights."""
    torch = _torch()
    torch.manual_seed(seed)
    model, shape = MODELS[name]()
    model.eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn((2,) + shape),), f, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=opset)
    return f.getvalue(), shape


def random_input(shape, batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch,) + tuple(shape)).astype(np.float32)
