using System.Text.Json.Serialization;
using Conic.Configuration;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>Which ResNet: 18 or 50 layers, as torchvision's resnet18 and resnet50.</summary>
public enum ResNetDepth
{
    /// <summary>Basic blocks [2, 2, 2, 2].</summary>
    ResNet18,
    /// <summary>Bottleneck blocks [3, 4, 6, 3], features 4 × wider.</summary>
    ResNet50,
}

/// <summary>Which Vision Transformer, as timm's vit_tiny and vit_small (12 blocks); None for a ResNet.</summary>
public enum VitSize
{
    /// <summary>Not a ViT: the backbone is the ResNet of <see cref="BackboneOptions.Depth"/>.</summary>
    None,
    /// <summary>192 dimensions, 3 heads (timm's vit_tiny_patch16_224: 5.5 M parameters without the head).</summary>
    Tiny,
    /// <summary>384 dimensions, 6 heads (timm's vit_small_patch16_224: 21.7 M parameters without the head).</summary>
    Small,
}

/// <summary>Which ConvNeXt, as timm's convnext_tiny; None for a ResNet or ViT.</summary>
public enum ConvNextSize
{
    /// <summary>Not a ConvNeXt.</summary>
    None,
    /// <summary>Stages of 3, 3, 9, 3 blocks, 96 to 768 channels (timm's convnext_tiny: 27.8 M parameters without the classifier).</summary>
    Tiny,
}

/// <summary>Every backbone <c>--arch</c> names.</summary>
public enum BackboneArchitecture
{
    /// <summary>torchvision's resnet18.</summary>
    ResNet18,
    /// <summary>torchvision's resnet50.</summary>
    ResNet50,
    /// <summary>timm's vit_tiny.</summary>
    VitTiny,
    /// <summary>timm's vit_small.</summary>
    VitSmall,
    /// <summary>timm's convnext_tiny.</summary>
    ConvNextTiny,
}

/// <summary>Backbone shape. <see cref="Width"/> is a ResNet's first stage's channel count (64 in torchvision).</summary>
public sealed record BackboneOptions
{
    /// <summary>ResNet-18 or ResNet-50 (when <see cref="Vit"/> and <see cref="ConvNext"/> are None).</summary>
    public ResNetDepth Depth { get; init; } = ResNetDepth.ResNet18;
    /// <summary>A Vision Transformer instead of a ResNet.</summary>
    public VitSize Vit { get; init; } = VitSize.None;
    /// <summary>A ConvNeXt instead of a ResNet.</summary>
    public ConvNextSize ConvNext { get; init; } = ConvNextSize.None;
    /// <summary>Channels of a ResNet's first stage; later stages double it (torchvision: 64). ViTs have their own sizes.</summary>
    public int Width { get; init; } = 16;
    /// <summary>
    /// For images of about 32 px: a ResNet's 3x3 stride-1 first convolution without max-pool (CIFAR-style stem), a
    /// ViT's 4-pixel patches (8 × 8 tokens at 32 px), a ConvNeXt's 2-pixel stem patches; otherwise ImageNet's 7x7/2
    /// convolution + max-pool, 16-pixel patches, or 4-pixel stem patches.
    /// </summary>
    public bool SmallImageStem { get; init; } = true;
    /// <summary>Channels of the input images (set from the data: 1 for grayscale, 3 for colour).</summary>
    public int InputChannels { get; init; } = 1;

    /// <summary>The architecture <c>--arch</c> names (files record <see cref="Depth"/>, <see cref="Vit"/> and <see cref="ConvNext"/>).</summary>
    [JsonIgnore]
    public BackboneArchitecture Architecture => (Vit, ConvNext) switch
    {
        (VitSize.Tiny, _) => BackboneArchitecture.VitTiny,
        (VitSize.Small, _) => BackboneArchitecture.VitSmall,
        (_, ConvNextSize.Tiny) => BackboneArchitecture.ConvNextTiny,
        _ => Depth == ResNetDepth.ResNet50 ? BackboneArchitecture.ResNet50 : BackboneArchitecture.ResNet18,
    };

    /// <summary>Whether the backbone is a ResNet (the only family with BatchNorm and bfloat16 convolutions).</summary>
    [JsonIgnore]
    public bool IsResNet => Vit == VitSize.None && ConvNext == ConvNextSize.None;

    /// <summary>These options with <paramref name="architecture"/>.</summary>
    public BackboneOptions With(BackboneArchitecture architecture) => architecture switch
    {
        BackboneArchitecture.VitTiny => this with { Vit = VitSize.Tiny, ConvNext = ConvNextSize.None },
        BackboneArchitecture.VitSmall => this with { Vit = VitSize.Small, ConvNext = ConvNextSize.None },
        BackboneArchitecture.ConvNextTiny => this with { Vit = VitSize.None, ConvNext = ConvNextSize.Tiny },
        BackboneArchitecture.ResNet50 => this with { Vit = VitSize.None, ConvNext = ConvNextSize.None, Depth = ResNetDepth.ResNet50 },
        _ => this with { Vit = VitSize.None, ConvNext = ConvNextSize.None, Depth = ResNetDepth.ResNet18 },
    };

    /// <summary>The architecture's name as <c>--arch</c> takes it (resnet18, vit-tiny, ...).</summary>
    [JsonIgnore]
    public string ArchitectureName => Names.First(n => n.Value == Architecture).Name;

    static readonly (string Name, BackboneArchitecture Value)[] Names =
    [
        ("resnet18", BackboneArchitecture.ResNet18), ("resnet50", BackboneArchitecture.ResNet50),
        ("vit-tiny", BackboneArchitecture.VitTiny), ("vit-small", BackboneArchitecture.VitSmall),
        ("convnext-tiny", BackboneArchitecture.ConvNextTiny),
    ];

    /// <summary>
    /// The backbone in words: "resnet18 of width 16 with the small stem", "vit-tiny with 4-pixel patches",
    /// "convnext-tiny with 2-pixel stem patches".
    /// </summary>
    public string Describe() => Architecture switch
    {
        BackboneArchitecture.VitTiny or BackboneArchitecture.VitSmall => $"{ArchitectureName} with {VisionTransformer.PatchSize(this)}-pixel patches",
        BackboneArchitecture.ConvNextTiny => $"{ArchitectureName} with {ConvNeXt.StemPatchSize(this)}-pixel stem patches",
        _ => $"{ArchitectureName} of width {Width} with the {(SmallImageStem ? "small" : "imagenet")} stem",
    };

    /// <summary>The backbone's flags: --arch, --width, --stem.</summary>
    public static readonly Settings<BackboneOptions> Settings = new Settings<BackboneOptions>()
        .Choice("--arch", "NAME", "backbone: resnet18, resnet50, vit-tiny, vit-small (timm's, 12 blocks of 192 or 384 dimensions) or convnext-tiny (timm's)",
                o => o.Architecture, (o, v) => o.With(v), Names)
        .Integer("--width", "C", "channels of a ResNet's first stage (torchvision: 64)", o => o.Width, (o, v) => o with { Width = v }, ValueRange.AtLeast(1))
        .Choice("--stem", "KIND", "small (ResNet: 3x3 conv, no max-pool; ViT: 4-pixel patches; ConvNeXt: 2-pixel stem; for ~32 px images) or imagenet (7x7/2 conv + max-pool; 16-pixel patches; 4-pixel stem)",
                o => o.SmallImageStem, (o, v) => o with { SmallImageStem = v }, ("small", true), ("imagenet", false));
}

/// <summary>
/// An image encoder: images [B, C, H, W] in, pooled features [B, <see cref="FeatureDim"/>] out, with its last feature
/// map (activation maps) and a pyramid of maps (dense heads). Parameter names are those of the library it matches
/// (torchvision's ResNets, timm's ViTs and ConvNeXts), so weights move to and from PyTorch unchanged.
/// </summary>
public abstract class Backbone : Module<Tensor, Tensor>
{
    /// <summary>A backbone of <paramref name="options"/>' shape, named after its architecture.</summary>
    protected Backbone(BackboneOptions options) : base(options.ArchitectureName)
    {
        BackboneOptions.Settings.ThrowIfInvalid(options);
        Options = options;
    }

    /// <summary>A randomly initialised backbone of <paramref name="options"/>' shape.</summary>
    public static Backbone Create(BackboneOptions options) =>
        options.Vit != VitSize.None ? new VisionTransformer(options)
        : options.ConvNext != ConvNextSize.None ? new ConvNeXt(options)
        : new ResNet(options);

    /// <summary>The shape this network was built with.</summary>
    public BackboneOptions Options { get; }
    /// <summary>Size of the pooled features.</summary>
    public abstract int FeatureDim { get; }
    /// <summary>Channels of each map of <see cref="forward_stages"/>, finest first.</summary>
    public abstract int[] StageChannels { get; }
    /// <summary>The last feature map [B, C, h, w] (for activation maps).</summary>
    public abstract Tensor forward_features(Tensor input);
    /// <summary>Four feature maps, finest first (each half the resolution of the one before), for dense heads.</summary>
    public abstract Tensor[] forward_stages(Tensor input);
    /// <summary>Input pixels per pixel of the finest map of <see cref="forward_stages"/>.</summary>
    public abstract int FirstStageStride { get; }
    /// <summary>The first layer in words (model cards, export metadata).</summary>
    public abstract string StemDescription { get; }
    /// <summary>How the pooled features come from the last map, in words ("after global average pooling").</summary>
    public abstract string PoolingDescription { get; }
    /// <summary>The library whose parameter names this backbone uses (torchvision, timm).</summary>
    public abstract string NamesAfter { get; }
    /// <summary>
    /// Run the convolutions in bfloat16 (weights cast on the fly, gradients and BatchNorm statistics stay float32):
    /// mixed precision for training on CPUs with bfloat16 arithmetic; features come out as float32 either way. Only
    /// ResNets use it (ViTs and ConvNeXts compute in float32).
    /// </summary>
    public bool BFloat16Compute { get; set; }
    /// <summary>Multiply-adds of one forward pass of one image of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public abstract long MultiplyAddsPerImage(long height, long width);
    /// <summary>Bytes a training step keeps for the backward pass per image, in float32 (an estimate within a small factor).</summary>
    public abstract long TrainingBytesPerImage(long height, long width);
}
