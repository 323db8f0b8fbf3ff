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

    public static TheoryData<string> Methods => new(MethodRegistry.Names);

    [Theory]
    [MemberData(nameof(Methods))]
    public void EveryMethodTrainsAConvNeXt(string name)
    {
        manual_seed(1);
        var definition = MethodRegistry.Get(name);
        var settings = definition.Defaults is SupervisedOptions supervised ? supervised with { Classes = 4 } : definition.Defaults;
        using var method = definition.Create(Backbone.Create(new BackboneOptions { ConvNext = ConvNextSize.Tiny }), 16, epochs: 2, settings);
        var views = new[] { randn(4, 1, 16, 16), randn(4, 1, 16, 16), randn(4, 1, 8, 8) };
        var batch = new TrainingBatch(method.UsesSmallCrops ? views : views[..2], arange(Kept(0), Kept(4), Kept(1), dtype: ScalarType.Int64), 0.75, new Generator(0),
                                      Labels: method.NeedsLabels ? arange(Kept(0), Kept(4), Kept(1), dtype: ScalarType.Int64) : null);
        var before = method.Backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.All(MethodSteps.Train(method, batch, 2), loss => Assert.True(float.IsFinite(loss), $"{name}: loss {loss}"));
        var unchanged = method.Backbone.state_dict().Where(kv => kv.Value.eq(before[kv.Key]).all().item<bool>()).Select(kv => kv.Key).ToList();
        Assert.Empty(unchanged);
    }

    [Fact]
    public void TheCommandPretrainsEmbedsAndExportsAConvNeXt()
    {
        string data = SyntheticData.WriteIdx(trainCount: 48, testCount: 16);
        string run = Path.Combine(data, "convnext");
        var pretrain = CliRunner.Run("pretrain", "--data", data, "--run", run, "--arch", "convnext-tiny", "--instances", "32", "--batch-size", "16",
                                     "--epochs", "1", "--threads", "2", "--no-eval", "--monitor-every", "0");
        Assert.True(pretrain.ExitCode == 0, pretrain.StdErr);
        Assert.Contains("\"arch\": \"convnext-tiny\"", File.ReadAllText(Path.Combine(run, "config.json")));

        var embed = CliRunner.Run("embed", "--run", run, "--data", data, "--split", "test");
        Assert.True(embed.ExitCode == 0, embed.StdErr);
        Assert.Contains("(16 x 768)", embed.StdErr);

        var export = CliRunner.Run("export", "--run", run, "--format", "safetensors");
        Assert.True(export.ExitCode == 0, export.StdErr);
        using var weights = InitialWeights.Read(Path.Combine(run, "encoder.safetensors"));
        Assert.Equal(new BackboneOptions { ConvNext = ConvNextSize.Tiny, InputChannels = 1 }, weights.Backbone);

        var onnx = CliRunner.Run("export", "--run", run, "--format", "onnx");
        Assert.True(onnx.ExitCode == 0, onnx.StdErr);
        Assert.Contains("backbone (2-pixel stem patches,", File.ReadAllText(Path.Combine(run, "README.md")));
    }
}
