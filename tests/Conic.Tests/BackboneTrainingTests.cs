using Conic.Methods;
using Conic.Models;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

/// <summary>The ViTs and ConvNeXt (the ResNet is every other test's) under every method and through the commands.</summary>
public class BackboneTrainingTests
{
    /// <summary>The small-image variant of the backbone <c>--arch</c> calls <paramref name="arch"/>.</summary>
    public static BackboneOptions Named(string arch, int channels = 1) =>
        BackboneOptions.Settings.Single(s => s.Flag == "--arch").Apply(new BackboneOptions { InputChannels = channels }, arch);

    public static TheoryData<string, string> BackbonesAndMethods()
    {
        var data = new TheoryData<string, string>();
        foreach (string arch in new[] { "vit-tiny", "convnext-tiny" })
        foreach (string method in MethodRegistry.Names) data.Add(arch, method);
        return data;
    }

    [Theory]
    [MemberData(nameof(BackbonesAndMethods))]
    public void EveryMethodTrainsEveryBackbone(string arch, string name)
    {
        manual_seed(1);
        var definition = MethodRegistry.Get(name);
        var settings = definition.Defaults is SupervisedOptions supervised ? supervised with { Classes = 4 } : definition.Defaults;
        using var method = definition.Create(Backbone.Create(Named(arch)), 16, epochs: 2, settings);
        // Small crops of 8 px reach even a ConvNeXt's last stage (odd maps are padded before downsampling).
        var views = new[] { randn(4, 1, 16, 16), randn(4, 1, 16, 16), randn(4, 1, 8, 8) };
        var batch = new TrainingBatch(method.UsesSmallCrops ? views : views[..2], arange(Kept(0), Kept(4), Kept(1), dtype: ScalarType.Int64), 0.75, new Generator(0),
                                      Labels: method.NeedsLabels ? arange(Kept(0), Kept(4), Kept(1), dtype: ScalarType.Int64) : null);
        var before = method.Backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.All(MethodSteps.Train(method, batch, 2), loss => Assert.True(float.IsFinite(loss), $"{arch}, {name}: loss {loss}"));
        // Every weight learns: a ViT's position table and class token, a ConvNeXt's layer scales.
        var unchanged = method.Backbone.state_dict().Where(kv => kv.Value.eq(before[kv.Key]).all().item<bool>()).Select(kv => kv.Key).ToList();
        Assert.Empty(unchanged);
    }

    [Theory]
    [InlineData("vit-tiny", 192, "4-pixel patches")]
    [InlineData("convnext-tiny", 768, "2-pixel stem patches")]
    public void TheCommandPretrainsEmbedsAndExportsEveryBackbone(string arch, int features, string stem)
    {
        string data = SyntheticData.WriteIdx(trainCount: 48, testCount: 16);
        string run = Path.Combine(data, arch);
        var pretrain = CliRunner.Run("pretrain", "--data", data, "--run", run, "--arch", arch, "--instances", "32", "--batch-size", "16",
                                     "--epochs", "1", "--threads", "2", "--no-eval", "--monitor-every", "0");
        Assert.True(pretrain.ExitCode == 0, pretrain.StdErr);
        Assert.Contains($"\"arch\": \"{arch}\"", File.ReadAllText(Path.Combine(run, "config.json")));
        // They train with AdamW unless told otherwise, at its own rate and decay.
        var config = Training.ConfigFile.Read(Path.Combine(run, "config.json"));
        Assert.Equal((5e-4, OptimizerKind.AdamW, 0.05), (config.LearningRate, config.Optimizer, config.WeightDecay));

        var embed = CliRunner.Run("embed", "--run", run, "--data", data, "--split", "test");
        Assert.True(embed.ExitCode == 0, embed.StdErr);
        Assert.Contains($"(16 x {features})", embed.StdErr);

        var export = CliRunner.Run("export", "--run", run, "--format", "safetensors");
        Assert.True(export.ExitCode == 0, export.StdErr);
        // timm's names, read back as the start of another run.
        using var weights = InitialWeights.Read(Path.Combine(run, "encoder.safetensors"));
        Assert.Equal(Named(arch), weights.Backbone);

        var onnx = CliRunner.Run("export", "--run", run, "--format", "onnx");
        Assert.True(onnx.ExitCode == 0, onnx.StdErr);
        Assert.Contains($"backbone ({stem},", File.ReadAllText(Path.Combine(run, "README.md")));
    }
}
