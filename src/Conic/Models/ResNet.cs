using static Conic.Runtime.KeptScalars;
using Conic.Configuration;
using Conic.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>
/// ResNet without its classifier: image [B, C, H, W] in, globally pooled features [B, <see cref="FeatureDim"/>] out.
/// Parameter names are torchvision's (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, ...), so weights move
/// to and from PyTorch unchanged.
/// </summary>
public sealed class ResNet : Backbone
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly bool _maxPool;

    /// <summary>Size of the pooled features: 8 × width (ResNet-18) or 32 × width (ResNet-50).</summary>
    public override int FeatureDim { get; }

    /// <summary>A randomly initialised network of <paramref name="options"/>' shape (torchvision's initialisation).</summary>
    public ResNet(BackboneOptions options) : base(options)
    {
        bool bottleneck = options.Depth == ResNetDepth.ResNet50;
        int[] blocks = bottleneck ? new[] { 3, 4, 6, 3 } : new[] { 2, 2, 2, 2 };
        int expansion = bottleneck ? 4 : 1;
        int w = options.Width;

        conv1 = options.SmallImageStem
            ? Conv2d(options.InputChannels, w, 3, stride: 1, padding: 1, bias: false)
            : Conv2d(options.InputChannels, w, 7, stride: 2, padding: 3, bias: false);
        bn1 = BatchNorm2d(w);
        _maxPool = !options.SmallImageStem;

        int inChannels = w;
        Sequential Stage(int planes, int count, int stride)
        {
            var stage = Sequential();
            for (int i = 0; i < count; i++)
            {
                Module<Tensor, Tensor> block = bottleneck
                    ? new Bottleneck(inChannels, planes, i == 0 ? stride : 1)
                    : new BasicBlock(inChannels, planes, i == 0 ? stride : 1);
                stage.append(i.ToString(), block);
                inChannels = planes * expansion;
            }
            return stage;
        }
        layer1 = Stage(w, blocks[0], 1);
        layer2 = Stage(w * 2, blocks[1], 2);
        layer3 = Stage(w * 4, blocks[2], 2);
        layer4 = Stage(w * 8, blocks[3], 2);
        FeatureDim = w * 8 * expansion;
        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>The globally pooled features [B, <see cref="FeatureDim"/>] of images [B, C, H, W].</summary>
    public override Tensor forward(Tensor input) => forward_features(input).mean(new long[] { 2, 3 });

    /// <inheritdoc/>
    public override int FirstStageStride => _maxPool ? 4 : 1;
    /// <inheritdoc/>
    public override string StemDescription => _maxPool ? "imagenet: conv1 7x7 stride 2, max-pool" : "small: conv1 3x3 stride 1 padding 1, no max-pool";
    /// <inheritdoc/>
    public override string PoolingDescription => "after global average pooling";
    /// <inheritdoc/>
    public override string NamesAfter => "torchvision";

    /// <summary>The first convolution and its BatchNorm (a ReLU follows, then the max-pool if <see cref="HasMaxPool"/>).</summary>
    internal (Conv2d Conv, BatchNorm2d Norm) Stem => (conv1, bn1);
    internal bool HasMaxPool => _maxPool;
    /// <summary>The residual blocks of the four stages in order (for writers of other formats, e.g. ONNX).</summary>
    internal IEnumerable<IResidualBlock> Blocks => BlocksWithStageEnds.Select(b => b.Block);

    /// <summary>The residual blocks in order, each with whether it ends its stage (its output is a stage's output).</summary>
    internal IEnumerable<(IResidualBlock Block, bool LastOfStage)> BlocksWithStageEnds =>
        new[] { layer1, layer2, layer3, layer4 }.SelectMany(stage =>
        {
            var blocks = stage.children().Cast<IResidualBlock>().ToArray();
            return blocks.Select((block, i) => (block, i == blocks.Length - 1));
        });

    /// <summary>Every convolution in forward order with the input height and width it sees for an image of <paramref name="height"/> x <paramref name="width"/>.</summary>
    internal IEnumerable<(Conv2d Conv, long Height, long Width)> ConvolutionInputs(long height, long width)
    {
        yield return (conv1, height, width);
        long h = OutputSize(height, conv1, 0), w = OutputSize(width, conv1, 1);
        if (_maxPool) (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        foreach (var block in Blocks)
        {
            var (blockH, blockW) = (h, w);
            foreach (var (conv, _) in block.Branch)
            {
                yield return (conv, h, w);
                (h, w) = (OutputSize(h, conv, 0), OutputSize(w, conv, 1));
            }
            if (block.Shortcut is var (shortcut, _)) yield return (shortcut, blockH, blockW);
        }
    }

    /// <summary>
    /// Multiply-adds of the convolutions in one forward pass of one image (the usual "FLOPs" count of ResNets:
    /// BatchNorm, ReLU and pooling left out); a training step costs about three times this per view.
    /// </summary>
    public override long MultiplyAddsPerImage(long height, long width) =>
        ConvolutionInputs(height, width).Sum(c =>
        {
            var kernel = c.Conv.weight!.shape;
            return kernel[0] * kernel[1] * kernel[2] * kernel[3] * OutputSize(c.Height, c.Conv, 0) * OutputSize(c.Width, c.Conv, 1);
        });

    /// <summary>The output height (<paramref name="axis"/> 0) or width (1) of <paramref name="conv"/> for an input of that size.</summary>
    static long OutputSize(long size, Conv2d conv, int axis)
    {
        long At(long[] values) => values[Math.Min(axis, values.Length - 1)];
        return (size + 2 * At(conv.padding!) - At(conv.dilation) * (conv.weight!.shape[2 + axis] - 1) - 1) / At(conv.stride) + 1;
    }

    /// <summary>
    /// Bytes a training step keeps for the backward pass per image: each convolution's output, its BatchNorm's and its
    /// ReLU's, in float32 (an estimate within a small factor, to refuse sizes that cannot fit before they are tried).
    /// </summary>
    public override long TrainingBytesPerImage(long height, long width) =>
        ConvolutionInputs(height, width).Sum(c => c.Conv.weight!.shape[0] * (c.Height / c.Conv.stride[0]) * (c.Width / c.Conv.stride[0])) * 3 * sizeof(float);

    /// <summary>The last stage's feature map [B, FeatureDim, h, w] (for activation maps).</summary>
    public override Tensor forward_features(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = StemForward(input);
        x = layer4.call(layer3.call(layer2.call(layer1.call(x))));
        // Maps leave in PyTorch's layout (the convolutions may compute channels-last), so callers can view them.
        return x.to(ScalarType.Float32).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The four stages' feature maps, finest first (strides 1, 2, 4, 8 after the stem), for dense heads.</summary>
    public override Tensor[] forward_stages(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = StemForward(input);
        var stages = new[] { layer1, layer2, layer3, layer4 }.Select(stage => x = stage.call(x)).ToArray();
        return stages.Select(s => s.to(ScalarType.Float32).contiguous().MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>Channels of each stage's output, finest first.</summary>
    public override int[] StageChannels => Enumerable.Range(0, 4).Select(i => FeatureDim >> (3 - i)).ToArray();

    Tensor StemForward(Tensor input)
    {
        if (BFloat16Compute) input = input.to(ScalarType.BFloat16);
        var x = functional.relu(BatchNorms.Apply(bn1, MixedPrecision.Conv(conv1, input)));
        if (_maxPool) x = functional.max_pool2d(x, 3, 2, 1);
        return ComputesChannelsLast ? MixedPrecision.ChannelsLast(x) : x;
    }

    /// <summary>
    /// Whether the stages compute channels-last (the stem never does: on 3-channel input oneDNN's channels-last kernel
    /// corrupted the heap on a Zen 5). Measured there in float32 (docs/performance): width 16 +56 %, width 8 within
    /// noise, width 32 +28 % in a single pair of runs, width 64 2.7× slower whichever of its layers took it; so only
    /// narrow networks on oneDNN do.
    /// </summary>
    internal bool ComputesChannelsLast =>
        Options.Width is >= MinChannelsLastWidth and <= MaxChannelsLastWidth
        && TorchRuntime.OneDnnEnabled && conv1.weight!.device_type == DeviceType.CPU;

    // Below 8 channels oneDNN takes the small-channel kernels that corrupted the heap; above 16 it measured slower.
    const int MinChannelsLastWidth = 8, MaxChannelsLastWidth = 16;

    /// <summary><paramref name="input"/> in the layout training gives <paramref name="conv"/>'s input.</summary>
    internal Tensor InTrainingLayout(Conv2d conv, Tensor input) =>
        ComputesChannelsLast && conv != conv1 ? MixedPrecision.ChannelsLast(input) : input;

    void InitializeWeights()
    {
        using var noGrad = no_grad();
        string lastBatchNormWeight = Options.Depth == ResNetDepth.ResNet50 ? "bn3.weight" : "bn2.weight";
        foreach (var (_, module) in named_modules())
        {
            if (module is Conv2d conv) init.kaiming_normal_(conv.weight, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
        }
        // Zero-init the last BN of each residual branch (Goyal et al.): each block starts as the identity.
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.StartsWith("layer", StringComparison.Ordinal) && name.EndsWith(lastBatchNormWeight, StringComparison.Ordinal))
                parameter.zero_();
        }
    }
}

/// <summary>
/// A residual block as convolution + BatchNorm pairs: the branch applies its pairs with a ReLU after each but the
/// last, adds the shortcut (the input itself, or a strided 1x1 convolution + BatchNorm), then applies a ReLU.
/// </summary>
interface IResidualBlock
{
    IReadOnlyList<(Conv2d Conv, BatchNorm2d Norm)> Branch { get; }
    (Conv2d Conv, BatchNorm2d Norm)? Shortcut { get; }
}

/// <summary>Two 3x3 convolutions with a residual connection (ResNet-18/34).</summary>
sealed class BasicBlock : Module<Tensor, Tensor>, IResidualBlock
{
    readonly Conv2d conv1, conv2;
    readonly BatchNorm2d bn1, bn2;
    readonly Sequential? downsample;

    public BasicBlock(int inChannels, int planes, int stride) : base(nameof(BasicBlock))
    {
        conv1 = Conv2d(inChannels, planes, 3, stride: stride, padding: 1, bias: false);
        bn1 = BatchNorm2d(planes);
        conv2 = Conv2d(planes, planes, 3, stride: 1, padding: 1, bias: false);
        bn2 = BatchNorm2d(planes);
        if (stride != 1 || inChannels != planes)
            downsample = Sequential(("0", Conv2d(inChannels, planes, 1, stride: stride, bias: false)), ("1", BatchNorm2d(planes)));
        RegisterComponents();
    }

    public IReadOnlyList<(Conv2d Conv, BatchNorm2d Norm)> Branch => new[] { (conv1, bn1), (conv2, bn2) };
    public (Conv2d Conv, BatchNorm2d Norm)? Shortcut => MixedPrecision.Pair(downsample);

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = functional.relu(BatchNorms.Apply(bn1, MixedPrecision.Conv(conv1, input)));
        x = BatchNorms.Apply(bn2, MixedPrecision.Conv(conv2, x));
        var identity = downsample == null ? input : MixedPrecision.Downsample(downsample, input);
        return functional.relu(x.add_(identity, Kept(1))).MoveToOuterDisposeScope();
    }
}

/// <summary>1x1 - 3x3 - 1x1 bottleneck with expansion 4 (ResNet-50), stride on the 3x3 as in torchvision.</summary>
sealed class Bottleneck : Module<Tensor, Tensor>, IResidualBlock
{
    readonly Conv2d conv1, conv2, conv3;
    readonly BatchNorm2d bn1, bn2, bn3;
    readonly Sequential? downsample;

    public Bottleneck(int inChannels, int planes, int stride) : base(nameof(Bottleneck))
    {
        conv1 = Conv2d(inChannels, planes, 1, bias: false);
        bn1 = BatchNorm2d(planes);
        conv2 = Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false);
        bn2 = BatchNorm2d(planes);
        conv3 = Conv2d(planes, planes * 4, 1, bias: false);
        bn3 = BatchNorm2d(planes * 4);
        if (stride != 1 || inChannels != planes * 4)
            downsample = Sequential(("0", Conv2d(inChannels, planes * 4, 1, stride: stride, bias: false)), ("1", BatchNorm2d(planes * 4)));
        RegisterComponents();
    }

    public IReadOnlyList<(Conv2d Conv, BatchNorm2d Norm)> Branch => new[] { (conv1, bn1), (conv2, bn2), (conv3, bn3) };
    public (Conv2d Conv, BatchNorm2d Norm)? Shortcut => MixedPrecision.Pair(downsample);

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = functional.relu(BatchNorms.Apply(bn1, MixedPrecision.Conv(conv1, input)));
        x = functional.relu(BatchNorms.Apply(bn2, MixedPrecision.Conv(conv2, x)));
        x = BatchNorms.Apply(bn3, MixedPrecision.Conv(conv3, x));
        var identity = downsample == null ? input : MixedPrecision.Downsample(downsample, input);
        return functional.relu(x.add_(identity, Kept(1))).MoveToOuterDisposeScope();
    }
}

/// <summary>Convolutions that follow their input's precision and layout: a bfloat16 input gets the float32 weights cast to bfloat16, a channels-last input gets them channels-last.</summary>
static class MixedPrecision
{
    /// <summary>The convolution in the input's precision and layout (see <see cref="ResNet.ComputesChannelsLast"/>).</summary>
    public static Tensor Conv(Conv2d conv, Tensor input) =>
        Convolve(conv, input, conv.weight!.dtype == input.dtype ? conv.weight : conv.weight.to(input.dtype));

    /// <summary>The convolution <paramref name="conv"/> describes with <paramref name="weight"/>, computed as training computes it (the arithmetic check's path too).</summary>
    public static Tensor Convolve(Conv2d conv, Tensor input, Tensor weight)
    {
        // A channels-last input gets its weight in the same layout (a copy per call, small beside the activations),
        // so oneDNN runs its channels-last kernels and keeps the output so; parameters stay in PyTorch's layout.
        if (IsChannelsLast(input))
            weight = ChannelsLast(weight);
        return functional.conv2d(input, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups);
    }

    public static Tensor ChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    // Channels adjacent and each pixel's channels together; a 1 × 1 map in PyTorch's layout has stride(1) == 1 too.
    static bool IsChannelsLast(Tensor t) => t.dim() == 4 && t.shape[1] > 1 && t.stride(1) == 1 && t.stride(3) == t.shape[1];

    /// <summary>The 1×1 convolution and BatchNorm of a residual shortcut.</summary>
    public static Tensor Downsample(Sequential downsample, Tensor input)
    {
        var (conv, norm) = Pair(downsample)!.Value;
        return BatchNorms.Apply(norm, Conv(conv, input));
    }

    /// <summary>A shortcut's (convolution, BatchNorm), or null for the identity shortcut.</summary>
    public static (Conv2d Conv, BatchNorm2d Norm)? Pair(Sequential? downsample)
    {
        if (downsample == null) return null;
        var modules = downsample.children().ToArray();
        return ((Conv2d)modules[0], (BatchNorm2d)modules[1]);
    }
}
