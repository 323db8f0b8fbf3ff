using static Conic.Runtime.KeptScalars;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>
/// A backbone with a light FPN decoder for dense tasks (Kirillov et al.'s semantic FPN reduced to one output
/// level): each stage is projected to <see cref="DecoderChannels"/> by a 1×1 convolution, the coarser sum is upsampled
/// and added from the last stage down to the first, then a 3×3 convolution + BatchNorm + ReLU and a 1×1 convolution
/// give <see cref="Outputs"/> maps at the first stage's resolution (the input's for the small stem, a quarter for
/// the ImageNet stem), or upsampled to the input's. Chosen over a U-Net decoder because it adds few weights: the
/// backbone, which transfer measures, stays most of the network.
/// </summary>
public sealed class DenseNetwork : TaskNetwork
{
    readonly Backbone backbone;
    readonly ModuleList<Conv2d> lateral;
    readonly Conv2d smooth, output;
    readonly BatchNorm2d smoothNorm;
    readonly bool upsampleToInput;

    /// <param name="upsampleToInput">Whether the maps are resized to the input's size (segmentation) or stay at <see cref="OutputStride"/> (detection).</param>
    public DenseNetwork(Backbone backbone, int outputs, bool upsampleToInput, int decoderChannels = 64) : base(nameof(DenseNetwork))
    {
        this.backbone = backbone;
        this.upsampleToInput = upsampleToInput;
        Outputs = outputs;
        DecoderChannels = decoderChannels;
        lateral = new ModuleList<Conv2d>(backbone.StageChannels.Select(c => Conv2d(c, decoderChannels, 1)).ToArray());
        smooth = Conv2d(decoderChannels, decoderChannels, 3, padding: 1, bias: false);
        smoothNorm = BatchNorm2d(decoderChannels);
        output = Conv2d(decoderChannels, outputs, 1);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;
    /// <summary>Output channels: the classes of a segmenter, or a detector's heat maps plus its four box maps.</summary>
    public int Outputs { get; }
    /// <summary>Channels of the FPN decoder.</summary>
    public int DecoderChannels { get; }
    /// <summary>Input pixels per output pixel (1 when upsampled to the input).</summary>
    public int OutputStride => upsampleToInput ? 1 : backbone.FirstStageStride;

    /// <summary>The last convolution, whose bias a task may initialise (e.g. a detection heat map's prior).</summary>
    public Conv2d OutputLayer => output;
    /// <summary>Whether the output is upsampled to the input's size (segmentation) or left at the decoder's stride (detection).</summary>
    public bool UpsamplesToInput => upsampleToInput;
    /// <summary>The decoder's layers, for writers of other formats (ONNX).</summary>
    internal IReadOnlyList<Conv2d> Lateral => lateral.ToArray();
    internal Conv2d Smooth => smooth;
    internal BatchNorm2d SmoothNorm => smoothNorm;

    /// <inheritdoc/>
    public override IEnumerable<Parameter> HeadParameters =>
        new Module[] { lateral, smooth, smoothNorm, output }.SelectMany(m => m.parameters());

    /// <summary>Images [B, C, H, W] to maps [B, Outputs, H / OutputStride, W / OutputStride].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var stages = backbone.forward_stages(images);
        Tensor? merged = null;
        for (int i = stages.Length - 1; i >= 0; i--)
        {
            var projected = lateral[i].call(stages[i]);
            merged = merged is null ? projected
                : projected.add_(functional.interpolate(merged, size: [projected.shape[2], projected.shape[3]], mode: InterpolationMode.Nearest), Kept(1));
        }
        var maps = output.call(functional.relu(BatchNorms.Apply(smoothNorm, smooth.call(merged!))));
        if (upsampleToInput && (maps.shape[2] != images.shape[2] || maps.shape[3] != images.shape[3]))
            maps = functional.interpolate(maps, size: [images.shape[2], images.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        return maps.MoveToOuterDisposeScope();
    }
}
