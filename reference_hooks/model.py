"""Build the upstream s2mel model (`MyModel`) from one of our configurations."""
from __future__ import annotations

from munch import Munch

from harness.configs import S2MelConfig
from reference_hooks.upstream import import_module


def upstream_args(cfg: S2MelConfig) -> Munch:
    """The `s2mel` section of upstream's config.yaml, with our sizes put in."""
    return Munch.fromDict(
        {
            "dit_type": "DiT",
            "reg_loss_type": "l1",
            "style_encoder": {"dim": cfg.style_dim},
            "length_regulator": {
                "channels": cfg.lr_channels,
                "is_discrete": False,
                "in_channels": cfg.lr_in_channels,
                "content_codebook_size": cfg.lr_codebook_size,
                "sampling_ratios": list(cfg.lr_sampling_ratios),
                "vector_quantize": False,
                "n_codebooks": 1,
                "quantizer_dropout": 0.0,
                "f0_condition": False,
                "n_f0_bins": 512,
            },
            "DiT": {
                "hidden_dim": cfg.hidden_dim,
                "num_heads": cfg.num_heads,
                "depth": cfg.depth,
                "class_dropout_prob": cfg.class_dropout_prob,
                "block_size": cfg.block_size,
                "in_channels": cfg.in_channels,
                "style_condition": True,
                "final_layer_type": "wavenet",
                "target": "mel",
                "content_dim": cfg.content_dim,
                "content_codebook_size": cfg.content_codebook_size,
                "content_type": "discrete",
                "f0_condition": False,
                "n_f0_bins": 512,
                "content_codebooks": 1,
                "is_causal": False,
                "long_skip_connection": True,
                "zero_prompt_speech_token": False,
                "time_as_token": False,
                "style_as_token": False,
                "uvit_skip_connection": True,
                "add_resblock_in_transformer": False,
            },
            "wavenet": {
                "hidden_dim": cfg.wavenet_hidden,
                "num_layers": cfg.wavenet_layers,
                "kernel_size": cfg.wavenet_kernel,
                "dilation_rate": cfg.wavenet_dilation,
                "p_dropout": cfg.wavenet_p_dropout,
                "style_condition": True,
            },
        }
    )


def build_model(cfg: S2MelConfig):
    """Upstream `MyModel(args, use_gpt_latent=True)`, in eval mode, as infer_v2._load_s2mel builds it."""
    commons = import_module("s2mel.modules.commons")
    model = commons.MyModel(upstream_args(cfg), use_gpt_latent=True)
    model.eval()
    return model
