using Conic.Augmentation;
using Conic.Data;
using Conic.Training;
using Conic.Models;
using static TorchSharp.torch;

namespace Conic.Tests;

public class AugmentationTests
{
    static Tensor SameImageEightTimes(int channels)
    {
        manual_seed(1);
        var one = randint(0, 256, new long[] { 1, channels, 16, 16 }, dtype: ScalarType.Byte);
        return one.expand(8, channels, 16, 16).contiguous();
    }

    static InputNormalization Normalization(int channels) =>
        new(Enumerable.Repeat(0.5f, channels).ToArray(), Enumerable.Repeat(0.25f, channels).ToArray());

    static BatchAugmenter Augmenter(int channels, AugmentationOptions? options = null) =>
        new(options ?? new AugmentationOptions { BlurProbability = 0.5 }, Normalization(channels));

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void EverySampleOfABatchGetsItsOwnView(int channels)
    {
        var views = Augmenter(channels).Augment(SameImageEightTimes(channels), new Generator(7));
        Assert.Equal(new long[] { 8, channels, 16, 16 }, views.shape);
        Assert.True(views.isfinite().all().item<bool>());
        for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            Assert.False(allclose(views[i], views[j]), $"samples {i} and {j} got the same view");
    }

    [Fact]
    public void SameSeedGivesSameViewsAndAnotherSeedDoesNot()
    {
        var images = SameImageEightTimes(3);
        var augmenter = Augmenter(3);
        var first = augmenter.Augment(images, new Generator(42));
        var again = augmenter.Augment(images, new Generator(42));
        var other = augmenter.Augment(images, new Generator(43));
        Assert.True(first.eq(again).all().item<bool>());
        Assert.False(allclose(first, other));
    }

    [Fact]
    public void IdentitySettingsReturnTheNormalisedImage()
    {
        var identity = new AugmentationOptions
        {
            CropAreaMin = 1, CropAreaMax = 1, CropRatioMin = 1, CropRatioMax = 1, FlipProbability = 0,
            JitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0,
        };
        var images = SameImageEightTimes(3);
        var augmenter = Augmenter(3, identity);
        Assert.True(allclose(augmenter.Augment(images, new Generator(0)), Normalization(3).FromPixels(images), atol: 1e-4));
    }

    [Fact]
    public void FlipAloneMirrorsTheImage()
    {
        var flipOnly = new AugmentationOptions
        {
            CropAreaMin = 1, CropAreaMax = 1, CropRatioMin = 1, CropRatioMax = 1, FlipProbability = 1,
            JitterProbability = 0, GrayscaleProbability = 0,
        };
        var images = SameImageEightTimes(1);
        var augmenter = Augmenter(1, flipOnly);
        Assert.True(allclose(augmenter.Augment(images, new Generator(0)), Normalization(1).FromPixels(images).flip(3), atol: 1e-4));
    }

    [Fact]
    public void GrayscaleImagesGetTwiceTheColourImagesIntensityJitterUnlessItIsSet()
    {
        // Jitter alone, on every sample: the spread of the views' mean intensity is the jitter's strength.
        static double MeanIntensitySpread(AugmentationOptions options)
        {
            var jitterOnly = options with { CropAreaMin = 1, CropRatioMin = 1, CropRatioMax = 1, FlipProbability = 0, JitterProbability = 1 };
            var images = SameImageEightTimes(1).repeat(16, 1, 1, 1);
            return Augmenter(1, jitterOnly).Augment(images, new Generator(3)).mean([1, 2, 3]).std().item<float>();
        }
        var byTheImages = new AugmentationOptions();
        Assert.Equal(new AugmentationOptions { Brightness = 0.8, Contrast = 0.8 }, byTheImages.ForChannels(1));
        Assert.Equal(AugmentationPresets.Named("grayscale"), byTheImages.ForChannels(1));
        Assert.Equal(new AugmentationOptions { Brightness = 0.4, Contrast = 0.4 }, byTheImages.ForChannels(3));
        Assert.Equal(new AugmentationOptions { Brightness = 0.5, Contrast = 0.8 }, new AugmentationOptions { Brightness = 0.5 }.ForChannels(1));
        Assert.True(MeanIntensitySpread(byTheImages) > 1.5 * MeanIntensitySpread(byTheImages.ForChannels(3)));
    }

    [Fact]
    public void ARunRecordsTheIntensityJitterItsImagesChose()
    {
        var grayscale = DatasetLoader.Load(SyntheticData.WriteIdx(trainCount: 16, testCount: 4)).Train;
        Assert.Equal(1, grayscale.Channels);
        Assert.Equal(new AugmentationOptions { Brightness = 0.8, Contrast = 0.8 }, Trainer.Resolve(new PretrainOptions(), grayscale).Augmentation);
        var contrastSet = new PretrainOptions { Augmentation = new AugmentationOptions { Contrast = 0.3 } };
        Assert.Equal(new AugmentationOptions { Brightness = 0.8, Contrast = 0.3 }, Trainer.Resolve(contrastSet, grayscale).Augmentation);
    }

    [Fact]
    public void OutOfRangeProbabilityNamesTheOption()
    {
        var error = Assert.Throws<ConicException>(() => AugmentationOptions.Settings.ThrowIfInvalid(new AugmentationOptions { FlipProbability = 1.5 }));
        Assert.Equal("--flip-p: 1.5 must be in [0, 1]", error.Message);
    }
}
