using Conic.Methods;
using Conic.Models;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class VisionTransformerTests
{
    [Theory]
    // timm's vit_tiny_patch16_224 has 5,717,416 parameters and vit_small_patch16_224 22,050,664, of which the
    // 1,000-class head takes 193,000 and 385,000.
    [InlineData(VitSize.Tiny, 192, 5_524_416)]
    [InlineData(VitSize.Small, 384, 21_665_664)]
    public void SizesNamesAndShapesAreTimms(VitSize size, int dim, long parameters)
    {
        using var vit = Backbone.Create(new BackboneOptions { Vit = size, SmallImageStem = false, InputChannels = 3 });
        Assert.IsType<VisionTransformer>(vit);
        Assert.Equal(parameters, vit.parameters().Sum(p => p.numel()));
        var state = vit.state_dict();
        Assert.Equal(new long[] { 1, 197, dim }, state["pos_embed"].shape);
        Assert.Equal(new long[] { dim, 3, 16, 16 }, state["patch_embed.proj.weight"].shape);
        Assert.Equal(new long[] { 3 * dim, dim }, state["blocks.11.attn.qkv.weight"].shape);
        Assert.Equal(new long[] { 4 * dim, dim }, state["blocks.0.mlp.fc1.weight"].shape);
        Assert.Contains("cls_token", state.Keys);
        Assert.Contains("norm.bias", state.Keys);
        vit.eval();
        using var images = randn(2, 3, 224, 224);
        Assert.Equal(new long[] { 2, dim }, vit.call(images).shape);
        Assert.Equal(new long[] { 2, dim, 14, 14 }, vit.forward_features(images).shape);
    }

    [Fact]
    public void InitialisationIsTimmsAndTellsImagesApart()
    {
        manual_seed(0);
        using var vit = Backbone.Create(new BackboneOptions { Vit = VitSize.Tiny });
        var state = vit.state_dict();
        // Normal weights of std 0.02 (TorchSharp 0.107's trunc_normal_ would give a constant 0.02: a network whose
        // class token is the same for every image), zero biases, a class token of std 1e-6.
        foreach (string name in new[] { "pos_embed", "blocks.0.attn.qkv.weight", "blocks.11.mlp.fc2.weight" })
        {
            Assert.Equal(0.02, state[name].std().item<float>(), 3);
            Assert.Equal(0, state[name].mean().item<float>(), 3);
        }
        Assert.Equal(0, state["blocks.0.attn.qkv.bias"].abs().max().item<float>());
        Assert.InRange(state["cls_token"].std().item<float>(), 0.5e-6, 2e-6);
        vit.eval();
        using var features = vit.call(randn(4, 1, 16, 16));
        Assert.True(features.std(0).mean().item<float>() > 0.1, "the class token barely depends on the image");
    }

    [Fact]
    public void SmallImagesGetFourPixelPatchesAndOtherSizesAResampledPositionTable()
    {
        using var vit = Backbone.Create(new BackboneOptions { Vit = VitSize.Tiny, InputChannels = 1 });
        vit.eval();
        Assert.Equal(new long[] { 1, 65, 192 }, vit.state_dict()["pos_embed"].shape);
        // Fashion-MNIST's 28 px: 7 x 7 patches; the 8 x 8 table is resampled.
        Assert.Equal(new long[] { 3, 192, 7, 7 }, vit.forward_features(randn(3, 1, 28, 28)).shape);
        // The pyramid for dense heads: 4x and 2x upsampled, the map itself, halved.
        var stages = vit.forward_stages(randn(2, 1, 32, 32));
        Assert.Equal(new[] { 32L, 16, 8, 4 }, stages.Select(s => s.shape[2]));
        Assert.All(stages, s => Assert.Equal(192, s.shape[1]));
    }
}
