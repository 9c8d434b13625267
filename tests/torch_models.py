"""PyTorch models for the attrib <-> PyTorch cross-checks (check_torch_models.py).

Three models built only from layers tools/export_torch.py supports, small
enough for float64 Hessian-vector products in seconds, and a few that the
exporter must refuse. The classes live here (not in the check script) so
torch.load finds them: export_torch.py is called with --import tests/.

build(name, seed) -> (model, input_shape, tokens, n_classes)
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from attrib_torch import CausalSelfAttention, PositionalEmbedding, SeqMean  # noqa: E402


class MLP(nn.Module):
    """Every pointwise activation attrib has, a dropout and a bias-free linear."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(36, 32), nn.ReLU(),
            nn.Linear(32, 32), nn.GELU(),
            nn.Linear(32, 24), nn.Tanh(),
            nn.Linear(24, 24), nn.SiLU(),
            nn.Dropout(0.1),
            nn.Linear(24, 16), nn.GELU(approximate="tanh"),
            nn.Linear(16, 16, bias=False), nn.Softplus(),
            nn.Linear(16, 12), nn.Sigmoid(),
            nn.Linear(12, 10),
        )

    def forward(self, x):
        return self.net(x)


class ResBlock(nn.Module):
    """conv-bn-relu-conv-bn plus a 1x1 projection shortcut (conv-bn), then relu."""

    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 12, (3, 2), stride=(1, 1), padding=(2, 1), dilation=(2, 1)), nn.Tanh(),
            nn.MaxPool2d(2),                                              # (12, 8, 8)
            ResBlock(12, 16),
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),  # (16, 4, 4)
            nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.SiLU(),         # (16, 2, 2)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 10))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


class PreLNBlock(nn.Module):
    """x + attn(ln1(x)); x + mlp(ln2(x)). causal: attrib_torch.CausalSelfAttention;
    otherwise a plain nn.MultiheadAttention called as attn(h, h, h)[0]."""

    def __init__(self, dim, heads, causal):
        super().__init__()
        self.causal = causal
        self.ln1 = nn.LayerNorm(dim)
        if causal:
            self.attn = CausalSelfAttention(dim, heads)
        else:
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.ln1(x)
        if self.causal:
            a = self.attn(h)
        else:
            a = self.attn(h, h, h, need_weights=False)[0]
        x = x + a
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Token ids (N, T) -> class scores: embedding, learned positions, a pre-LN and a
    post-LN nn.TransformerEncoderLayer, a causal and a plain hand-built pre-LN
    block, final layer norm, mean over tokens, linear."""

    def __init__(self, vocab=11, T=8, dim=16, heads=2, classes=5):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = PositionalEmbedding(T, dim)
        self.enc1 = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, activation="gelu",
                                               batch_first=True, norm_first=True)
        self.enc2 = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, activation="relu",
                                               batch_first=True, norm_first=False)
        self.blocks = nn.ModuleList([PreLNBlock(dim, heads, causal=True),
                                     PreLNBlock(dim, 1, causal=False)])
        self.ln = nn.LayerNorm(dim)
        self.mean = SeqMean()
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        x = self.pos(self.tok(ids))
        x = self.enc2(self.enc1(x))
        for b in self.blocks:
            x = b(x)
        return self.head(self.mean(self.ln(x)))


# ---- models the exporter must refuse: (model, input_shape, what the message names)


class Upsampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2))
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class AddConst(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) + 1.0


def refused():
    """(label, model, input_shape, tokens, substrings the error must contain)."""
    return [
        ("upsample", Upsampler(), [1, 4, 4], False, ["'features.2'", "nn.Upsample", "not supported"]),
        ("groups", nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten(), nn.Linear(4 * 2 * 2, 3)),
         [2, 4, 4], False, ["'0'", "nn.Conv2d", "groups=2"]),
        ("ceil_mode", nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.Flatten()), [1, 5, 5], False,
         ["'0'", "nn.MaxPool2d", "ceil_mode=True"]),
        ("add_const", AddConst(), [4], False, ["adding a constant"]),
        ("padding_mode", nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), nn.Flatten()),
         [1, 4, 4], False, ["'0'", "padding_mode='reflect'"]),
    ]


def randomize_batchnorm(model, g):
    """Non-trivial running statistics and affine parameters for every batch norm."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            C = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(C, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(C, generator=g) * 1.5 + 0.5)
                m.weight.copy_(1 + 0.3 * torch.randn(C, generator=g))
                m.bias.copy_(0.2 * torch.randn(C, generator=g))
            m.num_batches_tracked.fill_(7)


def build(name, seed=1):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 100)
    if name == "mlp":
        return MLP().eval(), [1, 6, 6], False, 10
    if name == "cnn":
        m = CNN()
        randomize_batchnorm(m, g)
        return m.eval(), [3, 16, 16], False, 10
    if name == "transformer":
        m = Transformer()
        with torch.no_grad():  # LN parameters away from (1, 0) so their gradients are tested
            for mod in m.modules():
                if isinstance(mod, nn.LayerNorm):
                    mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                    mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
                if isinstance(mod, nn.MultiheadAttention):
                    mod.in_proj_bias.copy_(0.1 * torch.randn(mod.in_proj_bias.shape, generator=g))
                    mod.out_proj.bias.copy_(0.1 * torch.randn(mod.out_proj.bias.shape, generator=g))
            m.pos.weight.copy_(0.3 * torch.randn(m.pos.weight.shape, generator=g))
        return m.eval(), [8], True, 5
    raise ValueError(name)
