"""nas-host's network JSON compiled to torch modules op by op (the PyTorch
side of the training bench and of the zero-cost proxies' reference check).
Padding "Same" is symmetric here, as nas-host's is for odd kernels."""

import torch
import torch.nn as nn


ACTIVATIONS = {
    "Relu": nn.ReLU,
    "Gelu": nn.GELU,
    "Silu": nn.SiLU,
    "Tanh": nn.Tanh,
    "Sigmoid": nn.Sigmoid,
    "LeakyRelu": lambda: nn.LeakyReLU(0.01),
}


class Graph(nn.Module):
    """nas-host's node graph: node i applies its op to the outputs of its inputs."""

    def __init__(self, network, channels, height, width):
        super().__init__()
        self.nodes = network["nodes"]
        self.mods = nn.ModuleList()
        shapes = []  # (channels, height, width) or (features,)
        for node in self.nodes:
            op = node["op"]
            ins = [shapes[i] for i in node["inputs"]]
            name, arg = (op, None) if isinstance(op, str) else next(iter(op.items()))
            mod, shape = nn.Identity(), ins[0] if ins else (channels, height, width)
            if name == "Conv2d":
                c, h, w = ins[0]
                pad = arg["dilation"] * (arg["kernel"] - 1) // 2 if arg["padding"] == "Same" else 0
                mod = nn.Conv2d(c, arg["filters"], arg["kernel"], arg["stride"], pad, arg["dilation"], arg["groups"], arg["bias"])
                side = lambda s: (s + 2 * pad - arg["dilation"] * (arg["kernel"] - 1) - 1) // arg["stride"] + 1
                shape = (arg["filters"], side(h), side(w))
            elif name in ("MaxPool", "AvgPool"):
                c, h, w = ins[0]
                pad = (arg["kernel"] - 1) // 2 if arg["padding"] == "Same" else 0
                if name == "MaxPool":
                    mod = nn.MaxPool2d(arg["kernel"], arg["stride"], pad)
                else:
                    mod = nn.AvgPool2d(arg["kernel"], arg["stride"], pad, count_include_pad=False)
                side = lambda s: (s + 2 * pad - arg["kernel"]) // arg["stride"] + 1
                shape = (c, side(h), side(w))
            elif name == "BatchNorm":
                mod = nn.BatchNorm2d(ins[0][0]) if len(ins[0]) == 3 else nn.BatchNorm1d(ins[0][0])
            elif name == "Activation":
                mod = ACTIVATIONS[arg]()
            elif name == "Dense":
                mod = nn.Linear(ins[0][0], arg)
                shape = (arg,)
            elif name == "Dropout":
                mod = nn.Dropout(arg)
            elif name == "Flatten":
                c, h, w = ins[0]
                mod, shape = nn.Flatten(), (c * h * w,)
            elif name in ("GlobalAvgPool", "GlobalMaxPool"):
                pool = nn.AdaptiveAvgPool2d(1) if name == "GlobalAvgPool" else nn.AdaptiveMaxPool2d(1)
                mod, shape = nn.Sequential(pool, nn.Flatten()), (ins[0][0],)
            elif name == "Concat":
                shape = (sum(i[0] for i in ins),) + tuple(ins[0][1:])
            elif name not in ("Input", "Add", "Identity", "Zero"):
                raise SystemExit(f"torch_graph.py: op {name} is not supported")
            self.mods.append(mod)
            shapes.append(shape)

    def forward(self, x):
        outs = []
        for node, mod in zip(self.nodes, self.mods):
            op = node["op"]
            name = op if isinstance(op, str) else next(iter(op))
            ins = [outs[i] for i in node["inputs"]]
            if name == "Input":
                y = x
            elif name == "Add":
                y = sum(ins[1:], ins[0])
            elif name == "Concat":
                y = torch.cat(ins, 1)
            elif name == "Zero":
                y = torch.zeros_like(ins[0])
            else:
                y = mod(ins[0])
            outs.append(y)
        return outs[-1]
