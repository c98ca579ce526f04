"""Random programs run two ways, to find where tracegrad disagrees with itself or PyTorch.

``python -m fuzz [CAMPAIGN ...] [--seed S] [--count N] [--seconds T]`` (``make fuzz`` runs
each campaign for a minute). Every program is made from one integer seed, so a failure
prints the command that reruns exactly it. The campaigns (`fuzz.campaigns`):

- ``rows``: graphs of elementwise ops, row and column reductions, softmax, layer norm and
  casts over one matrix (C-ordered, transposed or every other column), with a backward pass,
  compiled on the C and NumPy backends against eager: values and gradients.
- ``training``: training steps of random models, optimizers and losses, optionally clipping
  gradients, called at changing batch sizes (dynamic variants, row programs), compiled
  against eager: the loss and every parameter after each step.
- ``dynamic``: programs with views, in-place ops, matmuls and reductions called at changing
  batch sizes, compiled on both backends against eager: values and gradients.
- ``state``: a training step (a model with BatchNorm or dropout, an optimizer) compiled
  against eager while the loop changes what it reads between calls: freezing layers,
  resetting the optimizer's state, taking a parameter out of its group, train/eval,
  learning rates, .grad, weights changed in place or replaced, an int argument, the batch
  size, a call that raises after its update.
- ``views``: chains of views and in-place ops in eager mode against PyTorch (skipped when
  torch is not installed): the values of every tensor made, which ops raise, the gradient.

The generators live in `fuzz.programs`; ``tests/test_compile_random_steps.py`` draws a few
dozen programs from the same ones with hypothesis on every test run. Found with these, in
2026-12: a row program's float64 row overwriting a float32 input it still read, two sums
stored in one buffer (a wrong loss with clip_grad_norm_ at a new batch size), a trace's
write-back into the function's own tensor, and eager ``v[1:3] += y`` refusing backward; with
``state``: an optimizer's cleared state or parameter list and a layer unfrozen later (the
program kept the old moments), a call that raised leaving the state of before it, and a
dynamic variant serving other int or module arguments.
"""
