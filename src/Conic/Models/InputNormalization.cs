using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Models;

/// <summary>
/// How images enter the network: pixels scaled to [0, 1], then standardised per channel with the training images'
/// mean and standard deviation. Part of the trained model: training views, evaluation, embeddings and every export
/// apply the same.
/// </summary>
public sealed record InputNormalization(float[] Mean, float[] Std)
{
    /// <summary>uint8 images [B, C, H, W] as the network takes them (float32, same device).</summary>
    public Tensor FromPixels(Tensor images)
    {
        using var scope = NewDisposeScope();
        return FromUnitRange(images.to_type(ScalarType.Float32).div_(Kept(255f))).MoveToOuterDisposeScope();
    }

    /// <summary>Float images with values in [0, 1] (augmented views) as the network takes them.</summary>
    public Tensor FromUnitRange(Tensor images)
    {
        var mean = tensor(Mean, device: images.device).view(1, -1, 1, 1);
        var std = tensor(Std, device: images.device).view(1, -1, 1, 1);
        return images.sub(mean).div_(std);
    }
}
