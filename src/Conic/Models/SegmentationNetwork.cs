using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>
/// A ResNet backbone with a light FPN decoder (Kirillov et al.'s semantic FPN reduced to one output level): each stage
/// is projected to <see cref="DecoderChannels"/> by a 1×1 convolution, the coarser sum is upsampled and added from the
/// last stage down to the first, and a 3×3 convolution + BatchNorm + ReLU and a 1×1 classifier give per-pixel class
/// logits at the input's resolution. Chosen over a U-Net decoder because it adds few weights (the backbone, which is
/// what transfer measures, stays most of the network).
/// </summary>
public sealed class SegmentationNetwork : Module<Tensor, Tensor>
{
    readonly ResNet backbone;
    readonly ModuleList<Conv2d> lateral;
    readonly Conv2d smooth, classifier;
    readonly BatchNorm2d smoothNorm;

    public SegmentationNetwork(ResNet backbone, int classes, int decoderChannels = 64) : base(nameof(SegmentationNetwork))
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "segmentation needs at least two classes");
        this.backbone = backbone;
        Classes = classes;
        DecoderChannels = decoderChannels;
        lateral = new ModuleList<Conv2d>(backbone.StageChannels.Select(c => Conv2d(c, decoderChannels, 1)).ToArray());
        smooth = Conv2d(decoderChannels, decoderChannels, 3, padding: 1, bias: false);
        smoothNorm = BatchNorm2d(decoderChannels);
        classifier = Conv2d(decoderChannels, classes, 1);
        RegisterComponents();
    }

    public ResNet Backbone => backbone;
    public int Classes { get; }
    public int DecoderChannels { get; }

    /// <summary>The decoder's parameters (everything but the backbone), for frozen-backbone training.</summary>
    public IEnumerable<Parameter> HeadParameters =>
        new Module[] { lateral, smooth, smoothNorm, classifier }.SelectMany(m => m.parameters());

    /// <summary>Images [B, C, H, W] to class logits [B, Classes, H, W].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var stages = backbone.forward_stages(images);
        Tensor? merged = null;
        for (int i = stages.Length - 1; i >= 0; i--)
        {
            var projected = lateral[i].call(stages[i]);
            merged = merged is null ? projected
                : projected.add_(functional.interpolate(merged, size: [projected.shape[2], projected.shape[3]], mode: InterpolationMode.Nearest));
        }
        var logits = classifier.call(functional.relu(smoothNorm.call(smooth.call(merged!))));
        if (logits.shape[2] != images.shape[2] || logits.shape[3] != images.shape[3])
            logits = functional.interpolate(logits, size: [images.shape[2], images.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        return logits.MoveToOuterDisposeScope();
    }
}
