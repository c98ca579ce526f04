"""``tg.nn.utils``, as ``torch.nn.utils``: gradient clipping (clip_grad.py), parameters as one
vector and back (convert_parameters.py), padding a batch of sequences (rnn.py)."""

from . import rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "rnn", "vector_to_parameters"]
