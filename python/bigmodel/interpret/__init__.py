"""bm.interpret: tools to see what a model looks at.

saliency / input_gradient: gradients of a class score with respect to the input;
GradCAM: class-activation maps of a CNN layer from its activations and their gradients (module
forward / backward hooks); attention maps from GPT and BERT come from the models themselves
(model(..., output_attentions=True)), and attention_rollout combines them over layers.
Plotting helpers (overlay_heatmap, plot_attention) need matplotlib.
"""
from .gradients import input_gradient, saliency
from .gradcam import GradCAM, upsample
from .attention import attention_rollout, plot_attention, overlay_heatmap

__all__ = ["input_gradient", "saliency", "GradCAM", "upsample", "attention_rollout", "plot_attention",
           "overlay_heatmap"]
