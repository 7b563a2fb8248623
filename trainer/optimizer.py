"""The fine-tuning optimizer: transformers' AdamW (linear warm-up, then linear decay to 0) with
layer-wise learning-rate decay.

With `layer_lr_decay` d < 1, the classification head trains at the full learning rate, the
encoder's top layer at d times it, the next one down at d**2, ... and the embeddings at
d**(layers + 1): the lower layers, which hold the most general knowledge of the pretrained
checkpoint, move the least (Clark et al. 2020, ELECTRA; Sun et al. 2019, "How to fine-tune BERT
for text classification?"). d = 1 is transformers' `create_optimizer` unchanged.

Adam's steps do not depend on the gradient's scale, so scaling gradients would not do this:
the learning rate itself is scaled, variable by variable, where Keras' legacy Adam reads it.
"""
from __future__ import annotations

import re
from transformers.optimization_tf import AdamWeightDecay, create_optimizer

# transformers' TF BERT names a variable of encoder layer i ".../encoder/layer_._i/..." and the
# embeddings' ".../embeddings/..."; anything else (the head) is above the encoder.
_LAYER = re.compile(r"/layer_\._(\d+)/")
_EMBEDDINGS = re.compile(r"/embeddings/")


def depth_of(variable_name: str, num_layers: int) -> int:
    """0 for the embeddings, i + 1 for encoder layer i, num_layers + 1 for the head."""
    layer = _LAYER.search(variable_name)
    if layer:
        return int(layer.group(1)) + 1
    return 0 if _EMBEDDINGS.search(variable_name) else num_layers + 1


def learning_rate_factor(variable_name: str, num_layers: int, layer_lr_decay: float) -> float:
    """What the variable's learning rate is multiplied by."""
    return layer_lr_decay ** (num_layers + 1 - depth_of(variable_name, num_layers))


class LayerwiseDecayAdamWeightDecay(AdamWeightDecay):
    """transformers' AdamWeightDecay whose learning rate (and so its decoupled weight decay)
    is scaled per variable by `learning_rate_factor`."""

    def __init__(self, num_layers: int, layer_lr_decay: float, **kwargs):
        super().__init__(**kwargs)
        self.num_layers, self.layer_lr_decay = num_layers, layer_lr_decay

    def _scaled_state(self, var, apply_state):
        factor = learning_rate_factor(var.name, self.num_layers, self.layer_lr_decay)
        key = (var.device, var.dtype.base_dtype)
        coefficients = ((apply_state or {}).get(key)
                        or self._fallback_apply_state(*key))
        scaled = dict(coefficients)
        # lr_t: what the dense update and the weight decay use; lr: the bias-corrected rate
        # of the sparse (embedding-row) update.
        for name in ("lr_t", "lr"):
            scaled[name] = coefficients[name] * factor
        return {key: scaled}

    def _resource_apply_dense(self, grad, var, apply_state=None):
        return super()._resource_apply_dense(grad, var, self._scaled_state(var, apply_state))

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        return super()._resource_apply_sparse(grad, var, indices,
                                              self._scaled_state(var, apply_state))

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers,
                "layer_lr_decay": self.layer_lr_decay}


def create(learning_rate: float, train_steps: int, warmup_steps: int, weight_decay: float,
           num_layers: int, layer_lr_decay: float = 1.0):
    """AdamW for `train_steps` steps: `warmup_steps` of linear warm-up to `learning_rate`, then
    linear decay to 0; weight decay on all but biases and layer norms; the learning rate decayed
    layer-wise by `layer_lr_decay` below the head (1: not at all)."""
    optimizer, schedule = create_optimizer(
        init_lr=learning_rate, num_train_steps=max(train_steps, 1),
        num_warmup_steps=warmup_steps, weight_decay_rate=weight_decay)
    if layer_lr_decay == 1.0:
        return optimizer
    config = optimizer.get_config()
    return LayerwiseDecayAdamWeightDecay(
        num_layers=num_layers, layer_lr_decay=layer_lr_decay, learning_rate=schedule,
        weight_decay_rate=weight_decay,
        # transformers' own exemptions from weight decay (biases, layer norms) and Adam's
        # settings, as create_optimizer chose them
        exclude_from_weight_decay=getattr(optimizer, "_exclude_from_weight_decay", None),
        **{name: config[name] for name in ("beta_1", "beta_2", "epsilon", "amsgrad")})
