using Conic.Methods;
using Conic.Models;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class ConvNeXtTests
{
    [Fact]
    public void SizesNamesAndShapesAreTimms()
    {
        // timm's and torchvision's convnext_tiny have 28,589,128 parameters, of which the 1,000-class fc takes 769,000.
        using var convnext = Backbone.Create(new BackboneOptions { ConvNext = ConvNextSize.Tiny, SmallImageStem = false, InputChannels = 3 });
        Assert.IsType<ConvNeXt>(convnext);
        Assert.Equal(27_820_128, convnext.parameters().Sum(p => p.numel()));
        var state = convnext.state_dict();
        Assert.Equal(new long[] { 96, 3, 4, 4 }, state["stem.0.weight"].shape);
        Assert.Equal(new long[] { 96 }, state["stem.1.weight"].shape);
        Assert.Equal(new long[] { 192, 96, 2, 2 }, state["stages.1.downsample.1.weight"].shape);
        Assert.Equal(new long[] { 96 }, state["stages.1.downsample.0.weight"].shape);
        Assert.Equal(new long[] { 384, 1, 7, 7 }, state["stages.2.blocks.8.conv_dw.weight"].shape);
        Assert.Equal(new long[] { 3072, 768 }, state["stages.3.blocks.2.mlp.fc1.weight"].shape);
        Assert.Equal(new long[] { 768 }, state["stages.3.blocks.2.gamma"].shape);
        Assert.Equal(new long[] { 768 }, state["head.norm.weight"].shape);
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("stages.0.downsample", StringComparison.Ordinal));
        Assert.Equal(1e-6, state["stages.0.blocks.0.gamma"].max().item<float>(), 9);
        convnext.eval();
        using var images = randn(2, 3, 224, 224);
        Assert.Equal(new long[] { 2, 768 }, convnext.call(images).shape);
        Assert.Equal(new[] { 56L, 28, 14, 7 }, convnext.forward_stages(images).Select(s => s.shape[2]));
        Assert.Equal(new long[] { 2, 768, 7, 7 }, convnext.forward_features(images).shape);
    }

    [Fact]
    public void SmallImagesGetTwoPixelStemPatches()
    {
        using var convnext = Backbone.Create(new BackboneOptions { ConvNext = ConvNextSize.Tiny });
        convnext.eval();
        Assert.Equal(new long[] { 96, 1, 2, 2 }, convnext.state_dict()["stem.0.weight"].shape);
        // Odd maps are padded before downsampling: 7 → 4 → 2 (timm's convolution would give 3 → 1).
        var stages = convnext.forward_stages(randn(3, 1, 28, 28));
        Assert.Equal(new[] { 14L, 7, 4, 2 }, stages.Select(s => s.shape[2]));
        // A multi-crop view of 8 px still reaches the last stage.
        Assert.Equal(new long[] { 3, 768, 1, 1 }, convnext.forward_features(randn(3, 1, 8, 8)).shape);
        Assert.Equal(new[] { 96L, 192, 384, 768 }, stages.Select(s => s.shape[1]));
        Assert.Equal(2, convnext.FirstStageStride);
        // The pooled features are LayerNormed: mean 0 and variance 1 over each image's 768 numbers.
        using var features = convnext.call(randn(3, 1, 28, 28));
        Assert.True(features.mean([1]).abs().max().item<float>() < 1e-4);
        Assert.Equal(1, features.var([1], unbiased: false).mean().item<float>(), 2);
    }
}
