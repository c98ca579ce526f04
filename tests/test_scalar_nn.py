"""Tests of `tracegrad.nn.scalar`: micrograd's Module, Neuron, Layer and MLP on `Value`.

micrograd's nn is the specification. Where the `micrograd` package is importable the two are
run side by side; every such test has a companion that checks the same property against
numbers derived without micrograd.
"""

from __future__ import annotations

import random

import pytest

from tracegrad import Value
from tracegrad.nn.scalar import MLP, Layer, Module, Neuron


@pytest.fixture(scope="module")
def micro_nn():
    return pytest.importorskip("micrograd.nn")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def expected_initial_weights(seed, nin, nouts):
    """micrograd's init, replayed with a private generator: per neuron, ``nin`` draws of
    ``uniform(-1, 1)`` for the weights, then a bias of 0."""
    rng = random.Random(seed)
    sizes = [nin] + nouts
    out = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        for _ in range(fan_out):
            out += [rng.uniform(-1, 1) for _ in range(fan_in)] + [0]
    return out


# A tiny two-class problem (labels +-1), fixed so every run sees the same numbers.
_rng = random.Random(7)
X = [[_rng.uniform(-2, 2), _rng.uniform(-2, 2)] for _ in range(12)]
Y = [1 if a * b > 0 else -1 for a, b in X]


def train(mlp_cls, value_cls, steps=6):
    """micrograd's demo loop: max-margin loss + L2, plain SGD with a decaying rate."""
    random.seed(1337)
    model = mlp_cls(2, [16, 16, 1])
    losses = []
    for k in range(steps):
        inputs = [list(map(value_cls, row)) for row in X]
        scores = list(map(model, inputs))
        margins = [(1 + -yi * si).relu() for yi, si in zip(Y, scores)]
        data_loss = sum(margins) * (1.0 / len(margins))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        loss = data_loss + reg_loss
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    return losses, [p.data for p in model.parameters()]


# --------------------------------------------------------------------------------------
# Initialisation


def test_initial_weights_follow_python_random():
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    data = [p.data for p in model.parameters()]
    assert data[0] == random.Random(1337).uniform(-1, 1)
    assert data == expected_initial_weights(1337, 2, [16, 16, 1])
    # The global generator advanced by exactly one draw per weight (2*16 + 16*16 + 16).
    rng = random.Random(1337)
    for _ in range(2 * 16 + 16 * 16 + 16):
        rng.random()
    assert random.random() == rng.random()


def test_initial_weights_equal_micrograd(micro_nn):
    random.seed(1337)
    ours = MLP(2, [16, 16, 1])
    random.seed(1337)
    theirs = micro_nn.MLP(2, [16, 16, 1])
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]


def test_biases_start_at_zero_and_grads_at_zero():
    model = MLP(3, [4, 2])
    for layer in model.layers:
        for n in layer.neurons:
            assert n.b.data == 0
            assert all(-1 <= w.data <= 1 for w in n.w)
    assert all(p.grad == 0 for p in model.parameters())


# --------------------------------------------------------------------------------------
# Structure: reprs, parameters, return types


def test_reprs():
    assert repr(Neuron(3)) == "ReLUNeuron(3)"
    assert repr(Neuron(3, nonlin=False)) == "LinearNeuron(3)"
    assert repr(Layer(2, 2)) == "Layer of [ReLUNeuron(2), ReLUNeuron(2)]"
    relu16 = ", ".join(["ReLUNeuron(16)"] * 16)
    expected = (
        "MLP of [Layer of [" + ", ".join(["ReLUNeuron(2)"] * 16) + "], "
        f"Layer of [{relu16}], Layer of [LinearNeuron(16)]]"
    )
    model = MLP(2, [16, 16, 1])
    assert repr(model) == expected
    assert str(model).startswith("MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2), ")


def test_reprs_equal_micrograd(micro_nn):
    for ours, theirs in [
        (MLP(2, [16, 16, 1]), micro_nn.MLP(2, [16, 16, 1])),
        (MLP(3, [1]), micro_nn.MLP(3, [1])),
        (Layer(4, 3, nonlin=False), micro_nn.Layer(4, 3, nonlin=False)),
        (Neuron(5), micro_nn.Neuron(5)),
    ]:
        assert repr(ours) == repr(theirs)


def test_parameter_counts():
    assert len(MLP(2, [16, 16, 1]).parameters()) == 337  # (2+1)*16 + (16+1)*16 + (16+1)*1
    assert len(MLP(3, [4, 4, 1]).parameters()) == 16 + 20 + 5
    assert len(Layer(3, 4).parameters()) == 16
    assert len(Neuron(7).parameters()) == 8
    assert Module().parameters() == []


def test_parameters_are_distinct_values_in_micrograd_order():
    model = MLP(2, [3, 1])
    params = model.parameters()
    assert all(isinstance(p, Value) for p in params)
    assert len({id(p) for p in params}) == len(params)
    first = model.layers[0].neurons[0]
    assert params[:3] == first.w + [first.b]
    last = model.layers[1].neurons[0]
    assert params[-4:] == last.w + [last.b]


def test_layer_with_one_neuron_returns_a_value():
    x = [Value(1.0), Value(-2.0), Value(0.5)]
    out = Layer(3, 1)(x)
    assert isinstance(out, Value)
    outs = Layer(3, 2)(x)
    assert isinstance(outs, list) and len(outs) == 2
    assert all(isinstance(o, Value) for o in outs)
    assert isinstance(MLP(3, [4, 1])(x), Value)
    assert len(MLP(3, [4, 2])(x)) == 2


def test_neuron_computes_relu_of_affine_by_hand():
    n = Neuron(3)
    for w, v in zip(n.w, [0.5, -1.0, 2.0]):
        w.data = v
    n.b.data = 0.25
    x = [1.0, 2.0, -0.5]
    # sum(..., b) adds in the order b + w0*x0 + w1*x1 + w2*x2: 0.25 + 0.5 - 2 - 1 = -2.25.
    assert n(x).data == 0  # relu
    assert n(x)._op == "ReLU"
    linear = Neuron(3, nonlin=False)
    linear.w, linear.b = n.w, n.b
    assert linear(x).data == -2.25
    assert linear(x)._op == "+"


def test_mlp_forward_equals_micrograd_on_floats_and_values(micro_nn):
    random.seed(5)
    ours = MLP(3, [8, 8, 1])
    random.seed(5)
    theirs = micro_nn.MLP(3, [8, 8, 1])
    for x in ([0.5, -1.0, 2.0], [-0.1, 0.3, 0.7]):
        assert ours(x).data == theirs(x).data
        assert ours(list(map(Value, x))).data == theirs(x).data


def test_mlp_gradients_match_torch(torch):
    random.seed(3)
    model = MLP(3, [5, 4, 1])
    xs = [[0.5, -1.0, 2.0], [-0.3, 0.8, 0.1], [1.5, 0.2, -0.7]]
    ys = [1.0, -0.5, 0.25]
    loss = sum((model(list(map(Value, x))) - y) ** 2 for x, y in zip(xs, ys))
    loss.backward()

    weights, biases = [], []
    for layer in model.layers:
        w = [[p.data for p in n.w] for n in layer.neurons]
        b = [n.b.data for n in layer.neurons]
        weights.append(torch.tensor(w, dtype=torch.float64, requires_grad=True))
        biases.append(torch.tensor(b, dtype=torch.float64, requires_grad=True))
    h = torch.tensor(xs, dtype=torch.float64)
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w.T + b
        if i < len(weights) - 1:
            h = h.relu()
    t_loss = ((h[:, 0] - torch.tensor(ys, dtype=torch.float64)) ** 2).sum()
    t_loss.backward()

    assert loss.data == pytest.approx(t_loss.item(), rel=1e-12)
    for layer, w, b in zip(model.layers, weights, biases):
        for n, w_row, b_grad in zip(layer.neurons, w.grad, b.grad):
            assert [p.grad for p in n.w] == pytest.approx(w_row.tolist(), rel=1e-10, abs=1e-14)
            assert n.b.grad == pytest.approx(b_grad.item(), rel=1e-10, abs=1e-14)
    assert any(p.grad != 0 for p in model.parameters())


# --------------------------------------------------------------------------------------
# zero_grad and training


def test_zero_grad_resets_every_parameter_and_backward_repeats():
    random.seed(11)
    model = MLP(2, [4, 1])

    def loss_and_grads():
        loss = sum((model([Value(a), Value(b)]) - y) ** 2 for (a, b), y in zip(X, Y))
        loss.backward()
        return [p.grad for p in model.parameters()]

    first = loss_and_grads()
    assert sum(g != 0 for g in first) > len(first) // 2
    second = loss_and_grads()  # without zero_grad: accumulated
    assert second == pytest.approx([2 * g for g in first], rel=1e-12, abs=1e-15)
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())
    assert loss_and_grads() == first


def test_module_zero_grad_on_a_custom_module():
    class Pair(Module):
        def __init__(self):
            self.a, self.b = Value(1.0), Value(2.0)

        def parameters(self):
            return [self.a, self.b]

    m = Pair()
    (m.a * m.b).backward()
    assert (m.a.grad, m.b.grad) == (2.0, 1.0)
    m.zero_grad()
    assert (m.a.grad, m.b.grad) == (0, 0)
    Module().zero_grad()  # nothing to reset, and no error


def test_one_sgd_step_by_hand():
    n = Neuron(2, nonlin=False)
    n.w[0].data, n.w[1].data, n.b.data = 0.5, -0.25, 0.1
    pred = n([2.0, 4.0])  # 0.1 + 1.0 - 1.0 = 0.1
    loss = (pred - 1.0) ** 2  # 0.81, dL/dpred = 2 * (0.1 - 1) = -1.8
    n.zero_grad()
    loss.backward()
    assert loss.data == pytest.approx(0.81, rel=1e-15)
    grads = [p.grad for p in n.parameters()]
    assert grads == pytest.approx([-3.6, -7.2, -1.8], rel=1e-15)
    for p in n.parameters():
        p.data -= 0.1 * p.grad
    assert [p.data for p in n.parameters()] == pytest.approx([0.86, 0.47, 0.28], rel=1e-15)


def test_training_is_deterministic_and_reduces_the_loss():
    losses, params = train(MLP, Value)
    again, params_again = train(MLP, Value)
    assert losses == again  # bit for bit: the backward order does not depend on addresses
    assert params == params_again
    assert losses[-1] < 0.5 * losses[0]


def test_training_matches_micrograd(micro_nn):
    ours, our_params = train(MLP, Value)
    theirs, their_params = train(micro_nn.MLP, micro_nn.Value)
    # The first loss is computed before any update: the same float operations, so equal.
    assert ours[0] == theirs[0]
    # After that, equal to rounding. Not bit for bit: micrograd adds a node's incoming
    # gradients in the iteration order of its `_prev` sets, which follows memory addresses,
    # so micrograd does not reproduce its own last bits from run to run.
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert our_params == pytest.approx(their_params, rel=1e-10, abs=1e-13)
