namespace Conic.Augmentation;

/// <summary>
/// How one augmented view is drawn (SimCLR/MoCo v2 style, scaled for small images). Every sample of a batch draws
/// its own parameters. Saturation, hue and grayscale apply only to colour images.
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>Random resized crop: range of the crop's area as a fraction of the image.</summary>
    public double CropAreaMin { get; init; } = 0.3;
    public double CropAreaMax { get; init; } = 1.0;
    /// <summary>Random resized crop: range of the crop's aspect ratio (width / height).</summary>
    public double CropRatioMin { get; init; } = 3.0 / 4.0;
    public double CropRatioMax { get; init; } = 4.0 / 3.0;
    public double FlipProbability { get; init; } = 0.5;
    /// <summary>Probability that a sample gets colour jitter at all; the strengths below are maximal deviations.</summary>
    public double JitterProbability { get; init; } = 0.8;
    public double Brightness { get; init; } = 0.4;
    public double Contrast { get; init; } = 0.4;
    public double Saturation { get; init; } = 0.4;
    public double Hue { get; init; } = 0.1;
    public double GrayscaleProbability { get; init; } = 0.2;
    /// <summary>Gaussian blur; off by default because at 28-32 px it erases most detail (SimCLR skips it on CIFAR).</summary>
    public double BlurProbability { get; init; } = 0.0;
    public double BlurSigmaMin { get; init; } = 0.1;
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
    public double SmallCropAreaMin { get; init; } = 0.1;
    public double SmallCropAreaMax { get; init; } = 0.4;

    /// <summary>Throws a <see cref="ConicException"/> naming the option when a value is out of range.</summary>
    public void Validate()
    {
        if (CropAreaMin <= 0 || CropAreaMin > CropAreaMax || CropAreaMax > 1)
            throw new ConicException($"--crop-area-min: need 0 < min ({CropAreaMin}) <= max ({CropAreaMax}) <= 1");
        if (CropRatioMin <= 0 || CropRatioMin > CropRatioMax)
            throw new ConicException($"--crop-ratio: need 0 < min ({CropRatioMin}) <= max ({CropRatioMax})");
        Check.Probability("--flip-p", FlipProbability);
        Check.Probability("--jitter-p", JitterProbability);
        Check.Probability("--grayscale-p", GrayscaleProbability);
        Check.Probability("--blur-p", BlurProbability);
        if (Brightness < 0 || Contrast < 0 || Saturation < 0) throw new ConicException("--brightness/--contrast/--saturation: must be >= 0");
        if (Hue is < 0 or > 0.5) throw new ConicException($"--hue: {Hue} is not in [0, 0.5]");
        if (BlurSigmaMin <= 0 || BlurSigmaMin > BlurSigmaMax) throw new ConicException("--blur-sigma: need 0 < min <= max");
        if (RandAugmentOps < 0) throw new ConicException($"--randaugment-ops: {RandAugmentOps} must be >= 0");
        if (RandAugmentMagnitude is < 0 or > 10) throw new ConicException($"--randaugment-magnitude: {RandAugmentMagnitude} is not in [0, 10]");
        if (SmallCrops < 0) throw new ConicException($"--small-crops: {SmallCrops} must be >= 0");
        if (SmallCropSize < 0) throw new ConicException($"--small-crop-size: {SmallCropSize} must be >= 0");
        if (SmallCropAreaMin <= 0 || SmallCropAreaMin > SmallCropAreaMax || SmallCropAreaMax > 1)
            throw new ConicException($"--small-crop-area: need 0 < min ({SmallCropAreaMin}) <= max ({SmallCropAreaMax}) <= 1");
    }
}

/// <summary>Named augmentation policies (data, not code): a starting point that individual options then override.</summary>
public static class AugmentationPresets
{
    public static readonly IReadOnlyDictionary<string, AugmentationOptions> All = new Dictionary<string, AugmentationOptions>(StringComparer.OrdinalIgnoreCase)
    {
        // SimCLR / MoCo v2 policy scaled for 28-32 px images (blur off, crop area from 0.3).
        ["default"] = new AugmentationOptions(),
        // MoCo v1 / InstDisc: crop from 0.2, colour jitter always, no blur.
        ["mocov1"] = new AugmentationOptions { CropAreaMin = 0.2, JitterProbability = 1.0 },
        // InfoMin (Tian et al. 2020): MoCo v2's policy plus RandAugment; crop from 0.2 instead of 0.08 at this size.
        ["infomin"] = new AugmentationOptions { CropAreaMin = 0.2, RandAugmentOps = 2, RandAugmentMagnitude = 5 },
    };

    public static AugmentationOptions Named(string name) =>
        All.TryGetValue(name, out var preset)
            ? preset
            : throw new ConicException($"--augmentation: unknown preset '{name}' (known: {string.Join(", ", All.Keys)})");
}
