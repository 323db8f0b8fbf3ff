using Conic.Data;
using Conic.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Augmentation;

/// <summary>
/// Augments a whole batch at once with per-sample randomness: every random number is drawn on the CPU from the
/// caller's generator (so a seed fixes the views on any device), then the images are transformed on their device
/// with batched operations: one affine grid sample for crop + flip, broadcast factors for colour, a grouped
/// convolution for blur. Output is normalised as the model's inputs are (<see cref="InputNormalization"/>).
/// </summary>
public sealed class BatchAugmenter
{
    readonly AugmentationOptions _options;
    readonly InputNormalization _normalization;

    /// <summary>An augmenter with <paramref name="options"/> whose views are normalised with <paramref name="normalization"/>.</summary>
    public BatchAugmenter(AugmentationOptions options, InputNormalization normalization)
    {
        AugmentationOptions.Settings.ThrowIfInvalid(options);
        _options = options;
        _normalization = normalization;
    }

    /// <summary>
    /// The views a training step uses of images <paramref name="datasetIndices"/>: two main views, then the small
    /// multi-crops (if any), on <paramref name="device"/>. Every view's crop is drawn first, then cut: from the whole
    /// decoded image for a streamed data set (each image decoded once for all its views), from the stored image for an
    /// in-memory one; then each view is flipped, coloured and normalised.
    /// </summary>
    /// <param name="share">With data-parallel training, which rows of the global batch these images are (their random
    /// numbers are those rows' draws); null for a whole batch.</param>
    public Tensor[] Views(ImageDataset data, int[] datasetIndices, Device device, Generator generator, BatchShare? share = null)
    {
        var random = new SampleDraws(generator, share ?? BatchShare.All(datasetIndices.Length), datasetIndices.Length);
        using var scope = NewDisposeScope();
        int imageSide = Math.Min(data.Height, data.Width);
        int smallSide = _options.SmallCropSize > 0 ? _options.SmallCropSize : Math.Max(4, imageSide / 2);
        var specs = new List<(double AreaMin, double AreaMax, int? Side)> { (_options.CropAreaMin, _options.CropAreaMax, null), (_options.CropAreaMin, _options.CropAreaMax, null) };
        for (int i = 0; i < _options.SmallCrops; i++) specs.Add((_options.SmallCropAreaMin, _options.SmallCropAreaMax, smallSide));
        var draws = specs.Select(s => DrawCrops(random, s.AreaMin, s.AreaMax)).ToArray();

        Tensor[] cropped;
        if (data.IsStreamed)
        {
            var views = draws.Select((d, v) => ((IReadOnlyList<CropBox>)Boxes(d), specs[v].Side ?? data.Height)).ToArray();
            cropped = data.Crops(datasetIndices, views)
                          .Select((x, v) => Flip(x.to(device).to_type(ScalarType.Float32).div_(Kept(255f)), draws[v].Flip.to(device))).ToArray();
        }
        else
        {
            var stored = data.Gather(datasetIndices).to(device).to_type(ScalarType.Float32).div_(Kept(255f));
            cropped = draws.Select((d, v) => CropAndFlip(stored, d, specs[v].Side)).ToArray();
        }
        return cropped.Select(x => Finish(x, random).MoveToOuterDisposeScope()).ToArray();
    }

    static CropBox[] Boxes(CropDraw draw)
    {
        float[] w = draw.Width.data<float>().ToArray(), h = draw.Height.data<float>().ToArray();
        float[] cx = draw.CentreX.data<float>().ToArray(), cy = draw.CentreY.data<float>().ToArray();
        return Enumerable.Range(0, w.Length).Select(i => new CropBox(cx[i], cy[i], w[i], h[i])).ToArray();
    }

    static Tensor Flip(Tensor x, Tensor flip) => where(flip.view(-1, 1, 1, 1), x.flip(3), x);

    /// <summary>One random view of each image. <paramref name="images"/>: uint8 [B, C, H, W]; returns float [B, C, H, W].</summary>
    public Tensor Augment(Tensor images, Generator generator)
    {
        using var scope = NewDisposeScope();
        var random = new SampleDraws(generator, BatchShare.All(images.shape[0]), images.shape[0]);
        var draw = DrawCrops(random, _options.CropAreaMin, _options.CropAreaMax);
        var x = CropAndFlip(images.to_type(ScalarType.Float32).div_(Kept(255f)), draw, outputSide: null);
        return Finish(x, random).MoveToOuterDisposeScope();
    }

    /// <summary>Everything after the crop and flip: RandAugment, colour, grayscale, blur, normalisation.</summary>
    Tensor Finish(Tensor x, SampleDraws random)
    {
        long channels = x.shape[1];
        if (_options.RandAugmentOps > 0) x = RandAugment.Apply(x, random, _options.RandAugmentOps, _options.RandAugmentMagnitude);
        x = ColourJitter(x, random, channels);
        if (channels == 3) x = RandomGrayscale(x, random);
        x = Blur(x, random);
        return _normalization.FromUnitRange(x);
    }

    /// <summary>
    /// Each sample's crop: width and height as fractions of the image's sides (area and log-ratio uniform, clipped to
    /// the image), centre in [-1, 1] keeping the crop inside, and whether it is mirrored.
    /// </summary>
    CropDraw DrawCrops(SampleDraws random, double areaMin, double areaMax)
    {
        var o = _options;
        var area = random.Uniform(areaMin, areaMax, CPU);
        var ratio = random.Uniform(Math.Log(o.CropRatioMin), Math.Log(o.CropRatioMax), CPU).exp();
        var width = area.mul(ratio).sqrt_().clamp_max_(Kept(1.0));
        var height = area.div(ratio).sqrt_().clamp_max_(Kept(1.0));
        var centreX = random.Rand().mul_(Kept(2)).sub_(Kept(1)).mul_(width.neg().add(Kept(1), Kept(1)));
        var centreY = random.Rand().mul_(Kept(2)).sub_(Kept(1)).mul_(height.neg().add(Kept(1), Kept(1)));
        var flip = random.Rand().lt(Kept(o.FlipProbability));
        return new CropDraw(width, height, centreX, centreY, flip);
    }

    /// <summary>A batch's crops: sizes and centres as fractions of the image (CPU tensors [B]) and the mirrored ones.</summary>
    readonly record struct CropDraw(Tensor Width, Tensor Height, Tensor CentreX, Tensor CentreY, Tensor Flip);

    static Tensor CropAndFlip(Tensor x, CropDraw draw, long? outputSide)
    {
        long batch = x.shape[0];
        var (width, height, centreX, centreY, flip) = draw;
        var signX = where(flip, tensor(-1f), tensor(1f));
        var zeros = torch.zeros(batch);
        var theta = stack(new[]
        {
            stack(new[] { width.mul(signX), zeros, centreX }, 1),
            stack(new[] { zeros, height, centreY }, 1),
        }, 1).to(x.device);
        long[] outputShape = outputSide is long side ? new[] { x.shape[0], x.shape[1], side, side } : x.shape;
        var grid = F.affine_grid(theta, outputShape, align_corners: false);
        return F.grid_sample(x, grid, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Reflection, align_corners: false);
    }

    Tensor ColourJitter(Tensor x, SampleDraws random, long channels)
    {
        long batch = x.shape[0];
        var o = _options.ForChannels(channels);
        var device = x.device;
        var apply = random.Bernoulli(o.JitterProbability, device);
        Tensor Factor(double strength) =>
            where(apply, random.Uniform(Math.Max(0, 1 - strength), 1 + strength, device), tensor(1f, device: device)).view(-1, 1, 1, 1);
        var brightness = Factor(o.Brightness!.Value);
        var contrast = Factor(o.Contrast!.Value);
        var saturation = Factor(o.Saturation);
        var hue = where(apply, random.Uniform(-o.Hue, o.Hue, device), tensor(0f, device: device));

        x = x.mul(brightness).clamp_(Kept(0), Kept(1));
        var grayMean = Gray(x).mean(new long[] { 1, 2, 3 }, keepdim: true);
        x = x.sub(grayMean).mul_(contrast).add_(grayMean, Kept(1)).clamp_(Kept(0), Kept(1));
        if (channels != 3) return x;
        var gray = Gray(x);
        x = x.sub(gray).mul_(saturation).add_(gray, Kept(1)).clamp_(Kept(0), Kept(1));
        return RotateHue(x, hue).clamp_(Kept(0), Kept(1));
    }

    /// <summary>Hue shift as a rotation of the chroma plane in YIQ space (a batched stand-in for the HSV shift).</summary>
    static Tensor RotateHue(Tensor x, Tensor hueFraction)
    {
        var toYiq = tensor(new float[] { 0.299f, 0.587f, 0.114f, 0.596f, -0.274f, -0.322f, 0.211f, -0.523f, 0.312f }, device: x.device).view(3, 3);
        var fromYiq = linalg.inv(toYiq);
        var angle = hueFraction.mul(Kept(2 * Math.PI));
        var cos = angle.cos();
        var sin = angle.sin();
        var one = ones_like(cos);
        var zero = zeros_like(cos);
        var rotation = stack(new[] { one, zero, zero, zero, cos, sin.neg(), zero, sin, cos }, 1).view(-1, 3, 3);
        var transform = fromYiq.matmul(rotation).matmul(toYiq); // [B, 3, 3]
        return einsum("bij,bjhw->bihw", transform, x);
    }

    static Tensor Gray(Tensor x) => x.shape[1] == 3
        ? x[.., 0..1].mul(Kept(0.299)).add_(x[.., 1..2].mul(Kept(0.587)), Kept(1)).add_(x[.., 2..3].mul(Kept(0.114)), Kept(1))
        : x;

    Tensor RandomGrayscale(Tensor x, SampleDraws random)
    {
        var apply = random.Bernoulli(_options.GrayscaleProbability, x.device).view(-1, 1, 1, 1);
        return where(apply, Gray(x).expand_as(x), x);
    }

    Tensor Blur(Tensor x, SampleDraws random)
    {
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        var o = _options;
        var apply = random.Bernoulli(o.BlurProbability, CPU);
        var sigma = random.Uniform(o.BlurSigmaMin, o.BlurSigmaMax, CPU);
        if (o.BlurProbability == 0) return x;
        // Kernel about a tenth of the image side (odd, at least 3), as in SimCLR.
        int radius = Math.Max(1, (int)(Math.Min(height, width) / 20));
        var offsets = arange(Kept(-radius), Kept(radius + 1), Kept(1), dtype: ScalarType.Float32);
        // A tiny sigma makes the kernel a delta: samples that skip the blur pass through unchanged.
        var effectiveSigma = where(apply, sigma, tensor(1e-3f)).view(-1, 1);
        var kernel = offsets.view(1, -1).pow(Kept(2)).div(effectiveSigma.pow(Kept(2)).mul(Kept(2))).neg().exp();
        kernel = kernel.div(kernel.sum(1, keepdim: true)); // [B, K]
        var perChannel = kernel.repeat_interleave(channels, dim: 0).to(x.device); // [B*C, K]
        long size = 2 * radius + 1;
        var flat = x.reshape(1, batch * channels, height, width);
        flat = F.pad(flat, new long[] { radius, radius, radius, radius }, PaddingModes.Reflect);
        flat = F.conv2d(flat, perChannel.view(batch * channels, 1, 1, size), groups: batch * channels);
        flat = F.conv2d(flat, perChannel.view(batch * channels, 1, size, 1), groups: batch * channels);
        return flat.view(batch, channels, height, width);
    }
}
