using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Tests;

public class ArithmeticCheckTests
{
    static readonly ConvolutionArithmetic Bf16 = ConvolutionArithmetic.BFloat16OneDnn, OneDnn = ConvolutionArithmetic.Float32OneDnn,
                                          Native = ConvolutionArithmetic.Float32Native;

    static ArithmeticTrial Trial(ConvolutionArithmetic arithmetic, double error, string where = "layer1.0.conv1 weight gradient") =>
        new(arithmetic, error, where, arithmetic.BFloat16 ? ArithmeticCheck.BFloat16Tolerance : ArithmeticCheck.Float32Tolerance);

    [Fact]
    public void TheFastestAgreeingArithmeticIsChosenAndWhatFailedIsNamed()
    {
        // As on the Zen 5 machine: bfloat16 wrong by 61.8 %, float32 oneDNN not finite, the native kernels right.
        var trials = new[] { Trial(Bf16, 0.618), Trial(OneDnn, double.NaN, "layer1.0.conv2 output"), Trial(Native, 3e-6) };
        var choice = ArithmeticCheck.Select(trials, [Bf16, OneDnn, Native], [OneDnn, Native]);
        Assert.Equal((Native, Native), (choice.Training, choice.Evaluation));
        string line = choice.Describe();
        Assert.Contains("61.80 %", line);
        Assert.Contains("layer1.0.conv1 weight gradient", line);
        Assert.Contains("layer1.0.conv2 output not finite", line);
        Assert.Contains(TorchRuntime.CpuDescription(), line);

        var healthy = ArithmeticCheck.Select([Trial(Bf16, 0.003), Trial(OneDnn, 5e-6), Trial(Native, 3e-6)], [Bf16, OneDnn, Native], [OneDnn, Native]);
        Assert.Equal((Bf16, OneDnn), (healthy.Training, healthy.Evaluation));
    }

    [Fact]
    public void OnlyAFloat32OneDnnFaultAsksForTheAvx2Cap()
    {
        var float32Fault = ArithmeticCheck.Select([Trial(Bf16, 0.618), Trial(OneDnn, double.NaN), Trial(Native, 3e-6)], [Bf16, OneDnn, Native], [OneDnn, Native]);
        var bfloat16Fault = ArithmeticCheck.Select([Trial(Bf16, 0.618), Trial(OneDnn, 5e-6)], [Bf16, OneDnn, Native], [OneDnn, Native]);
        Assert.True(float32Fault.WantsOneDnnIsaCap);
        Assert.False(bfloat16Fault.WantsOneDnnIsaCap);
        Environment.SetEnvironmentVariable(ConvolutionArithmetic.IsaCapVariable, "AVX2");
        try
        {
            // Already capped: the native kernels are the answer, and the description says oneDNN was capped.
            Assert.False(float32Fault.WantsOneDnnIsaCap);
            Assert.Contains("float32 convolutions (oneDNN, instructions capped at AVX2)", float32Fault.Describe());
        }
        finally
        {
            Environment.SetEnvironmentVariable(ConvolutionArithmetic.IsaCapVariable, null);
        }
    }

    [Fact]
    public void TheCommandRunsWithOneDnnCappedAtAvx2()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        var (exitCode, _, stderr) = CliRunner.Run(new Dictionary<string, string> { [ConvolutionArithmetic.IsaCapVariable] = "AVX2" },
            "pretrain", "--data", data, "--run", Path.Combine(data, "run"), "--instances", "32", "--batch-size", "16", "--epochs", "1",
            "--width", "8", "--precision", "fp32", "--no-eval", "--monitor-every", "0");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("arithmetic: float32 convolutions (oneDNN, instructions capped at AVX2), checked against float64", stderr);
    }

    [Fact]
    public void AnExplicitChoiceThatFailsIsAnErrorNamingTheCpuAndTheLayer()
    {
        var error = Assert.Throws<ConicException>(() => ArithmeticCheck.Select([Trial(Bf16, 0.618), Trial(OneDnn, 5e-6)], [Bf16], [OneDnn]));
        Assert.Contains(TorchRuntime.CpuDescription(), error.Message);
        Assert.Contains("layer1.0.conv1 weight gradient off by 61.80 %", error.Message);
        Assert.Contains("--precision auto", error.Message);
    }

    [Fact]
    public void TheCheckAgreesOnThisMachineAndLeavesTheNetworkAndRandomStreamAlone()
    {
        TorchRuntime.Initialize("cpu", 0);
        manual_seed(5);
        using var backbone = new ResNet(new BackboneOptions { Width = 4 });
        var before = backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        bool oneDnn = TorchRuntime.OneDnnEnabled;
        var expectedNext = randn(3);
        manual_seed(5);
        _ = new ResNet(new BackboneOptions { Width = 4 });

        var trials = ArithmeticCheck.Measure(backbone, 16, 16, 8, [Bf16, OneDnn, Native]);
        Assert.Equal(3, trials.Count);
        // The float32 kernels must agree wherever the suite runs; bfloat16 is allowed to fail (Zen 5) but then not chosen.
        Assert.All(trials.Where(t => !t.Arithmetic.BFloat16), t => Assert.True(t.Agrees, t.ToString()));
        Assert.All(trials, t => Assert.True(double.IsNaN(t.Error) || t.Error >= 0));
        Assert.True(randn(3).allclose(expectedNext), "the check moved the random number stream");
        Assert.Equal(oneDnn, TorchRuntime.OneDnnEnabled);
        Assert.False(backbone.BFloat16Compute);
        foreach (var (name, value) in backbone.state_dict())
            Assert.True(value.eq(before[name]).all().item<bool>(), $"{name} changed");
    }
}
