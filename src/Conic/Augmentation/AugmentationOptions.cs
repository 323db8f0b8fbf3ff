using Conic.Configuration;

namespace Conic.Augmentation;

/// <summary>
/// How one augmented view is drawn (SimCLR/MoCo v2 style, scaled for small images). Every sample of a batch draws
/// its own parameters. Saturation, hue and grayscale apply only to colour images.
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>Random resized crop: range of the crop's area as a fraction of the image.</summary>
    public double CropAreaMin { get; init; } = 0.3;
    /// <summary>Random resized crop: the largest crop area as a fraction of the image.</summary>
    public double CropAreaMax { get; init; } = 1.0;
    /// <summary>Random resized crop: range of the crop's aspect ratio (width / height).</summary>
    public double CropRatioMin { get; init; } = 3.0 / 4.0;
    /// <summary>Random resized crop: the widest aspect ratio (width / height).</summary>
    public double CropRatioMax { get; init; } = 4.0 / 3.0;
    /// <summary>Probability of a horizontal flip.</summary>
    public double FlipProbability { get; init; } = 0.5;
    /// <summary>Probability that a sample gets colour jitter at all; the strengths below are maximal deviations.</summary>
    public double JitterProbability { get; init; } = 0.8;
    /// <summary>Brightness and contrast strengths; unset means chosen by the images (<see cref="IntensityJitterFor"/>).</summary>
    public double? Brightness { get; init; }
    /// <summary>Contrast strength; unset means chosen by the images, as <see cref="Brightness"/>.</summary>
    public double? Contrast { get; init; }
    /// <summary>Saturation strength (colour images only).</summary>
    public double Saturation { get; init; } = 0.4;
    /// <summary>Hue strength, at most 0.5 (colour images only).</summary>
    public double Hue { get; init; } = 0.1;
    /// <summary>Probability that a colour view is turned to grayscale.</summary>
    public double GrayscaleProbability { get; init; } = 0.2;
    /// <summary>Gaussian blur; off by default because at 28-32 px it erases most detail (SimCLR skips it on CIFAR).</summary>
    public double BlurProbability { get; init; } = 0.0;
    /// <summary>The smallest blur sigma, in pixels.</summary>
    public double BlurSigmaMin { get; init; } = 0.1;
    /// <summary>The largest blur sigma, in pixels.</summary>
    public double BlurSigmaMax { get; init; } = 2.0;
    /// <summary>RandAugment-style operations per image (0 = off): each draws one of rotate, shear, translate,
    /// autocontrast, solarize, posterize or identity.</summary>
    public int RandAugmentOps { get; init; }
    /// <summary>Strength of those operations, 0-10 (RandAugment's M).</summary>
    public double RandAugmentMagnitude { get; init; } = 5;
    /// <summary>Multi-crop (SwAV): small extra views per image besides the two main views.</summary>
    public int SmallCrops { get; init; }
    /// <summary>Side of the small crops in pixels; 0 means half the image side.</summary>
    public int SmallCropSize { get; init; }
    /// <summary>The smallest area of a small crop as a fraction of the image.</summary>
    public double SmallCropAreaMin { get; init; } = 0.1;
    /// <summary>The largest area of a small crop as a fraction of the image.</summary>
    public double SmallCropAreaMax { get; init; } = 0.4;

    /// <summary>
    /// Brightness and contrast strength where they are not set: 0.8 on grayscale images, which have no saturation or
    /// hue to jitter, so intensity alone must stop telling images apart (Fashion-MNIST validation: +2.3 kNN over 0.4;
    /// make-scenes items at 17 minutes: no harm; docs/capacity); SimCLR's 0.4 on colour images.
    /// </summary>
    public static double IntensityJitterFor(long channels) => channels == 1 ? 0.8 : 0.4;

    /// <summary>These options with the strengths left to the images filled in, as a run on such images records them.</summary>
    public AugmentationOptions ForChannels(long channels) =>
        this with { Brightness = Brightness ?? IntensityJitterFor(channels), Contrast = Contrast ?? IntensityJitterFor(channels) };

    /// <summary>An area fraction: a crop of no area has no pixels.</summary>
    static readonly ValueRange Fraction = new(0, 1, MinOpen: true);

    static readonly string ByTheImages = FormattableString.Invariant($"{IntensityJitterFor(1)} on grayscale images, {IntensityJitterFor(3)} on colour");

    /// <summary>Every augmentation setting with its flag and range; <c>--augmentation PRESET</c> is applied before the others, which refine it.</summary>
    public static readonly Settings<AugmentationOptions> Settings = new Settings<AugmentationOptions>()
        .Text("--augmentation", "PRESET", $"augmentation preset ({string.Join(", ", AugmentationPresets.All.Keys)}); the settings below refine it",
              o => AugmentationPresets.All.FirstOrDefault(p => p.Value == o).Key ?? "custom",
              (_, v) => AugmentationPresets.Named(v), appliedFirst: true)
        .Number("--crop-area-min", "F", "random resized crop: smallest area fraction", o => o.CropAreaMin, (o, v) => o with { CropAreaMin = v }, Fraction)
        .Number("--crop-area-max", "F", "random resized crop: largest area fraction", o => o.CropAreaMax, (o, v) => o with { CropAreaMax = v }, Fraction)
        .Number("--crop-ratio-min", "R", "random resized crop: smallest aspect ratio (width / height)", o => o.CropRatioMin, (o, v) => o with { CropRatioMin = v },
                ValueRange.Positive)
        .Number("--crop-ratio-max", "R", "random resized crop: largest aspect ratio", o => o.CropRatioMax, (o, v) => o with { CropRatioMax = v }, ValueRange.Positive)
        .Number("--flip-p", "P", "horizontal flip probability", o => o.FlipProbability, (o, v) => o with { FlipProbability = v }, ValueRange.UnitInterval)
        .Number("--jitter-p", "P", "colour jitter probability", o => o.JitterProbability, (o, v) => o with { JitterProbability = v }, ValueRange.UnitInterval)
        .OptionalNumber("--brightness", "S", "colour jitter: brightness strength", o => o.Brightness, (o, v) => o with { Brightness = v }, ValueRange.NonNegative,
                        _ => ByTheImages)
        .OptionalNumber("--contrast", "S", "colour jitter: contrast strength", o => o.Contrast, (o, v) => o with { Contrast = v }, ValueRange.NonNegative,
                        _ => ByTheImages)
        .Number("--saturation", "S", "colour jitter: saturation strength (colour images)", o => o.Saturation, (o, v) => o with { Saturation = v }, ValueRange.NonNegative)
        .Number("--hue", "S", "colour jitter: hue strength (colour images)", o => o.Hue, (o, v) => o with { Hue = v }, new(0, 0.5))
        .Number("--grayscale-p", "P", "random grayscale probability (colour images)", o => o.GrayscaleProbability, (o, v) => o with { GrayscaleProbability = v },
                ValueRange.UnitInterval)
        .Number("--blur-p", "P", "Gaussian blur probability", o => o.BlurProbability, (o, v) => o with { BlurProbability = v }, ValueRange.UnitInterval)
        .Number("--blur-sigma-min", "PX", "Gaussian blur: smallest sigma", o => o.BlurSigmaMin, (o, v) => o with { BlurSigmaMin = v }, ValueRange.Positive)
        .Number("--blur-sigma-max", "PX", "Gaussian blur: largest sigma", o => o.BlurSigmaMax, (o, v) => o with { BlurSigmaMax = v }, ValueRange.Positive)
        .Integer("--randaugment-ops", "N", "RandAugment-style operations per image (0 = off; infomin uses 2)", o => o.RandAugmentOps,
                 (o, v) => o with { RandAugmentOps = v }, ValueRange.NonNegative)
        .Number("--randaugment-magnitude", "M", "their strength, 0-10", o => o.RandAugmentMagnitude, (o, v) => o with { RandAugmentMagnitude = v }, new(0, 10))
        .Integer("--small-crops", "N", "multi-crop: small extra views per image (swav, conic)", o => o.SmallCrops, (o, v) => o with { SmallCrops = v }, ValueRange.NonNegative)
        .Integer("--small-crop-size", "PX", "side of the small crops; 0 = half the image side", o => o.SmallCropSize, (o, v) => o with { SmallCropSize = v },
                 ValueRange.NonNegative)
        .Number("--small-crop-area-min", "F", "small crops: smallest area fraction", o => o.SmallCropAreaMin, (o, v) => o with { SmallCropAreaMin = v }, Fraction)
        .Number("--small-crop-area-max", "F", "small crops: largest area fraction", o => o.SmallCropAreaMax, (o, v) => o with { SmallCropAreaMax = v }, Fraction)
        .Rule(o => o.CropAreaMin <= o.CropAreaMax ? null : $"crop area: the smallest fraction ({o.CropAreaMin}) is above the largest ({o.CropAreaMax})")
        .Rule(o => o.CropRatioMin <= o.CropRatioMax ? null : $"crop aspect ratio: the smallest ({o.CropRatioMin}) is above the largest ({o.CropRatioMax})")
        .Rule(o => o.BlurSigmaMin <= o.BlurSigmaMax ? null : $"blur sigma: the smallest ({o.BlurSigmaMin}) is above the largest ({o.BlurSigmaMax})")
        .Rule(o => o.SmallCropAreaMin <= o.SmallCropAreaMax ? null : $"small crop area: the smallest fraction ({o.SmallCropAreaMin}) is above the largest ({o.SmallCropAreaMax})");
}

/// <summary>Named augmentation policies (data, not code): a starting point that individual options then override.</summary>
public static class AugmentationPresets
{
    /// <summary>The presets by name (case-insensitive): default, mocov1, infomin, grayscale.</summary>
    public static readonly IReadOnlyDictionary<string, AugmentationOptions> All = new Dictionary<string, AugmentationOptions>(StringComparer.OrdinalIgnoreCase)
    {
        // SimCLR / MoCo v2 policy scaled for 28-32 px images (blur off, crop area from 0.3), brightness and contrast by the images.
        ["default"] = new AugmentationOptions(),
        // MoCo v1 / InstDisc: crop from 0.2, colour jitter always, no blur.
        ["mocov1"] = new AugmentationOptions { CropAreaMin = 0.2, JitterProbability = 1.0 },
        // InfoMin (Tian et al. 2020): MoCo v2's policy plus RandAugment; crop from 0.2 instead of 0.08 at this size.
        ["infomin"] = new AugmentationOptions { CropAreaMin = 0.2, RandAugmentOps = 2, RandAugmentMagnitude = 5 },
        // The default's choice for grayscale images, by name: brightness and contrast 0.8 whatever the images.
        ["grayscale"] = new AugmentationOptions { Brightness = 0.8, Contrast = 0.8 },
    };

    /// <summary>The preset called <paramref name="name"/>; an unknown name is a one-line error listing the known ones.</summary>
    public static AugmentationOptions Named(string name) =>
        All.TryGetValue(name, out var preset)
            ? preset
            : throw new ConicException($"unknown augmentation preset '{name}' (known: {string.Join(", ", All.Keys)})");
}
