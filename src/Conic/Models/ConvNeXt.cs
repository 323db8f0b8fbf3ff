using static Conic.Runtime.KeptScalars;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>
/// A ConvNeXt as timm's convnext_tiny (Liu et al. 2022): a patchify stem (convolution with the patch's size and
/// stride, then a channel LayerNorm), four stages of 3, 3, 9, 3 blocks at 96, 192, 384, 768 channels, each stage after
/// the first entered through a LayerNorm and a 2×2 stride-2 convolution. A block is a 7×7 depthwise convolution, a
/// LayerNorm, a 4× wide GELU MLP and a learned per-channel scale (started at 1e-6) on a residual path. The pooled
/// features are the last map's global average, LayerNormed (timm's head.norm). Parameter names are timm's (stem.0,
/// stages.1.downsample.1, stages.0.blocks.0.conv_dw, .mlp.fc1, .gamma, head.norm). The small stem's 2-pixel patches keep
/// 14 × 14 positions of a 28 px image in the first stage, where ImageNet's 4-pixel ones would leave 7 × 7 and a
/// last stage of nothing. A map of odd size is zero-padded at the bottom and right before a downsampling (timm's
/// 2×2 convolution would drop its last row and column, and a 1×1 map): the same network at even sizes such as 224 px,
/// and every stage at least 1×1 for small images and multi-crop views (28 px: stages of 14, 7, 4, 2).
/// </summary>
public sealed class ConvNeXt : Backbone
{
    static readonly int[] Depths = [3, 3, 9, 3];
    static readonly int[] Dims = [96, 192, 384, 768];

    readonly Sequential stem;
    readonly ModuleList<ConvNeXtStage> stages;
    readonly ConvNeXtHead head;
    readonly int _stemPatch;

    /// <summary>The stem's patch side: 2 pixels for small images, 4 for ImageNet-sized ones.</summary>
    public static int StemPatchSize(BackboneOptions options) => options.SmallImageStem ? 2 : 4;

    /// <summary>A randomly initialised ConvNeXt-tiny (timm's initialisation: weights normal with std 0.02, biases zero).</summary>
    public ConvNeXt(BackboneOptions options) : base(options)
    {
        _stemPatch = StemPatchSize(options);
        stem = Sequential(("0", Conv2d(options.InputChannels, Dims[0], _stemPatch, stride: _stemPatch)), ("1", new ChannelLayerNorm(Dims[0])));
        stages = new ModuleList<ConvNeXtStage>(Enumerable.Range(0, Depths.Length)
            .Select(i => new ConvNeXtStage(i == 0 ? null : Dims[i - 1], Dims[i], Depths[i])).ToArray());
        head = new ConvNeXtHead(Dims[^1]);
        RegisterComponents();
        // timm's truncated normal (cut at ±2, 100 std away) is a plain normal here; see VisionTransformer.
        using var noGrad = no_grad();
        foreach (var conv in modules().OfType<Conv2d>())
        {
            init.normal_(conv.weight!, std: 0.02);
            init.zeros_(conv.bias!);
        }
        foreach (var linear in modules().OfType<Linear>())
        {
            init.normal_(linear.weight!, std: 0.02);
            init.zeros_(linear.bias!);
        }
    }

    /// <inheritdoc/>
    public override int FeatureDim => Dims[^1];
    /// <inheritdoc/>
    public override int[] StageChannels => Dims;
    /// <inheritdoc/>
    public override int FirstStageStride => _stemPatch;
    /// <inheritdoc/>
    public override string StemDescription => $"{_stemPatch}-pixel stem patches";
    /// <inheritdoc/>
    public override string PoolingDescription => "after global average pooling and a LayerNorm";
    /// <inheritdoc/>
    public override string NamesAfter => "timm";

    /// <summary>Parts for writers of other formats (ONNX): the stem's convolution and norm, the stages, the final norm.</summary>
    internal (Conv2d StemConvolution, ChannelLayerNorm StemNorm, IReadOnlyList<ConvNeXtStage> Stages, ChannelLayerNorm HeadNorm) Parts =>
        ((Conv2d)stem.children().First(), (ChannelLayerNorm)stem.children().Last(), stages.ToArray(), head.Norm);

    /// <summary>The last map averaged over its positions, then LayerNormed [B, 768].</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return head.call(forward_features(input)).MoveToOuterDisposeScope();
    }

    /// <summary>The last stage's map [B, 768, h, w].</summary>
    public override Tensor forward_features(Tensor input)
    {
        using var scope = NewDisposeScope();
        return forward_stages(input)[^1].MoveToOuterDisposeScope();
    }

    /// <summary>Each stage's output, finest first.</summary>
    public override Tensor[] forward_stages(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = stem.call(input);
        var outputs = new List<Tensor>();
        foreach (var stage in stages)
        {
            x = stage.call(x);
            outputs.Add(x);
        }
        return outputs.Select(o => o.MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>The map sizes of each stage for an image of <paramref name="height"/> x <paramref name="width"/> (each downsampling rounds up).</summary>
    IEnumerable<(int Stage, long Height, long Width)> StageSizes(long height, long width)
    {
        long h = height / _stemPatch, w = width / _stemPatch;
        for (int i = 0; i < Dims.Length; i++)
        {
            if (i > 0) (h, w) = ((h + 1) / 2, (w + 1) / 2);
            yield return (i, h, w);
        }
    }

    /// <summary>The stem, each downsampling convolution, and per block the depthwise 7×7 and the MLP's two layers.</summary>
    public override long MultiplyAddsPerImage(long height, long width)
    {
        long total = (height / _stemPatch) * (width / _stemPatch) * Dims[0] * Options.InputChannels * _stemPatch * _stemPatch;
        foreach (var (i, h, w) in StageSizes(height, width))
        {
            long positions = h * w, dim = Dims[i];
            if (i > 0) total += positions * dim * Dims[i - 1] * 4;
            total += Depths[i] * positions * (dim * 49 + 8 * dim * dim);
        }
        return total;
    }

    /// <summary>Per block: its input, the depthwise output, the normed map, the MLP's hidden layer before and after GELU (4 wide each) and its output: about 12 maps of the stage's width.</summary>
    public override long TrainingBytesPerImage(long height, long width) =>
        StageSizes(height, width).Sum(s => Depths[s.Stage] * s.Height * s.Width * Dims[s.Stage] * 12L) * sizeof(float);
}

/// <summary>timm's LayerNorm2d: a LayerNorm over the channels of each position of a [B, C, H, W] map (eps 1e-6).</summary>
sealed class ChannelLayerNorm : Module<Tensor, Tensor>
{
    readonly Parameter weight, bias;
    readonly long[] _shape;

    public ChannelLayerNorm(int channels) : base(nameof(ChannelLayerNorm))
    {
        _shape = [channels];
        weight = Parameter(ones(channels));
        bias = Parameter(zeros(channels));
        RegisterComponents();
    }

    internal const double Epsilon = 1e-6;
    internal (Parameter Weight, Parameter Bias) Affine => (weight, bias);

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var normed = functional.layer_norm(input.permute(0, 2, 3, 1), _shape, weight, bias, Epsilon);
        return normed.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }
}

/// <summary>One stage: the downsampling (a channel LayerNorm and a 2×2 stride-2 convolution, odd maps padded; none in the first stage), then its blocks.</summary>
sealed class ConvNeXtStage : Module<Tensor, Tensor>
{
    readonly Sequential? downsample;
    // The downsampling's two layers, held apart for the forward pass (their names are downsample.0 and .1).
    readonly (ChannelLayerNorm Norm, Conv2d Convolution)? _downsampling;
    readonly ModuleList<ConvNeXtBlock> blocks;

    public ConvNeXtStage(int? inputChannels, int channels, int depth) : base(nameof(ConvNeXtStage))
    {
        if (inputChannels is int input)
        {
            (ChannelLayerNorm Norm, Conv2d Convolution) layers = (new ChannelLayerNorm(input), Conv2d(input, channels, 2, stride: 2));
            downsample = Sequential(("0", layers.Norm), ("1", layers.Convolution));
            _downsampling = layers;
        }
        blocks = new ModuleList<ConvNeXtBlock>(Enumerable.Range(0, depth).Select(_ => new ConvNeXtBlock(channels)).ToArray());
        RegisterComponents();
    }

    internal (ChannelLayerNorm Norm, Conv2d Convolution)? Downsampling => _downsampling;
    internal IReadOnlyList<ConvNeXtBlock> Blocks => blocks.ToArray();

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        if (Downsampling is { } downsampling)
        {
            var (norm, convolution) = downsampling;
            x = norm.call(x);
            // Odd sizes are padded to even, so that the 2×2 stride-2 convolution sees every row and column.
            long padBottom = x.shape[2] % 2, padRight = x.shape[3] % 2;
            if (padBottom + padRight > 0) x = functional.pad(x, [0, padRight, 0, padBottom]);
            x = convolution.call(x);
        }
        foreach (var block in blocks) x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>x + γ · mlp(norm(dwconv7×7(x))), the norm and MLP over each position's channels.</summary>
sealed class ConvNeXtBlock : Module<Tensor, Tensor>
{
    readonly Conv2d conv_dw;
    readonly LayerNorm norm;
    readonly FeedForward mlp;
    readonly Parameter gamma;

    public ConvNeXtBlock(int channels) : base(nameof(ConvNeXtBlock))
    {
        conv_dw = Conv2d(channels, channels, 7, padding: 3, groups: channels);
        norm = LayerNorm(channels, eps: ChannelLayerNorm.Epsilon);
        mlp = new FeedForward(channels, 4 * channels);
        gamma = Parameter(ones(channels).mul_(Kept(1e-6)));
        RegisterComponents();
    }

    internal (Conv2d Depthwise, LayerNorm Norm, Linear Fc1, Linear Fc2, Parameter Scale) Parts => (conv_dw, norm, mlp.Fc1, mlp.Fc2, gamma);

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = conv_dw.call(input).permute(0, 2, 3, 1);
        x = mlp.call(norm.call(x)).mul(gamma).permute(0, 3, 1, 2);
        return input.add(x, Kept(1)).MoveToOuterDisposeScope();
    }
}

/// <summary>timm's head without its classifier: the last map's average over positions, then a LayerNorm (head.norm).</summary>
sealed class ConvNeXtHead : Module<Tensor, Tensor>
{
    readonly ChannelLayerNorm norm;

    public ConvNeXtHead(int channels) : base(nameof(ConvNeXtHead))
    {
        norm = new ChannelLayerNorm(channels);
        RegisterComponents();
    }

    internal ChannelLayerNorm Norm => norm;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return norm.call(input.mean([2, 3], keepdim: true)).flatten(1).MoveToOuterDisposeScope();
    }
}
