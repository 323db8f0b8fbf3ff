using Conic.Training;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

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
        var maps = Energy(model, images);
        var flat = maps.flatten(1);
        var low = flat.amin(new long[] { 1 }, keepdim: true);
        var range = flat.amax(new long[] { 1 }, keepdim: true).sub(low).clamp_min_(Kept(1e-12));
        return flat.sub(low).div_(range).view(maps.shape).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The share of the activation (the L2 norm over channels of the last feature map, upsampled to the input) that
    /// falls on object pixels (mask value other than 0 and 255), summed over all images: 1 means the encoder responds
    /// only on objects, the object pixels' own share of the image means it responds evenly everywhere.
    /// </summary>
    /// <param name="images">uint8 [N, C, H, W].</param>
    /// <param name="masks">uint8 [N, H, W], 0 = background.</param>
    /// <returns>The activation's share on objects and the objects' share of the pixels.</returns>
    public static (double OnObjects, double ObjectPixels) ObjectShare(PretrainedModel model, Tensor images, Tensor masks, int batchSize = 128)
    {
        model.Method.eval();
        using var noGrad = no_grad();
        double onObjects = 0, total = 0;
        for (long start = 0; start < images.shape[0]; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(batchSize, images.shape[0] - start);
            var energy = Energy(model, images.narrow(0, start, count)).cpu();
            var mask = masks.narrow(0, start, count);
            var objects = mask.ne(Kept(0)).logical_and(mask.ne(Kept(255)));
            onObjects += energy.mul(objects).sum().item<float>();
            total += energy.sum().item<float>();
        }
        using var objectPixels = masks.ne(Kept(0)).logical_and(masks.ne(Kept(255))).to_type(ScalarType.Float32).mean();
        return (total == 0 ? 0 : onObjects / total, objectPixels.item<float>());
    }

    /// <summary>The L2 norm over channels of the last feature map, upsampled bilinearly to the images' size: [B, H, W].</summary>
    static Tensor Energy(PretrainedModel model, Tensor images)
    {
        var features = model.Backbone.forward_features(model.Normalization.FromPixels(images.to(model.Device)));
        return F.interpolate(features.pow(Kept(2)).sum(1, keepdim: true).sqrt_(), new[] { images.shape[2], images.shape[3] },
                             mode: InterpolationMode.Bilinear, align_corners: false).squeeze(1);
    }
}
