using Conic.Training;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Conic.Evaluation;

/// <summary>
/// Where the encoder responds: the L2 norm over channels of the backbone's last feature map, upsampled bilinearly
/// to the input's size and scaled to [0, 1] per image (as in the ConIC paper's Figure 1).
/// </summary>
public static class ActivationMaps
{
    /// <param name="images">uint8 [B, C, H, W].</param>
    /// <returns>float [B, H, W] in [0, 1] on the CPU.</returns>
    public static Tensor Compute(PretrainedModel model, Tensor images)
    {
        model.Method.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long height = images.shape[2], width = images.shape[3];
        var features = model.Backbone.forward_features(model.Normalization.FromPixels(images.to(model.Device)));
        var energy = features.pow(2).sum(1, keepdim: true).sqrt_();
        var maps = F.interpolate(energy, new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false).squeeze(1);
        var flat = maps.flatten(1);
        var low = flat.amin(new long[] { 1 }, keepdim: true);
        var range = flat.amax(new long[] { 1 }, keepdim: true).sub(low).clamp_min_(1e-12);
        return flat.sub(low).div_(range).view(maps.shape).cpu().MoveToOuterDisposeScope();
    }
}
