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
        // The capped path itself is under test, so verdicts forced on the suite (CONIC_ARITHMETIC) are not passed on.
        var (exitCode, _, stderr) = CliRunner.Run(new Dictionary<string, string> { [ConvolutionArithmetic.IsaCapVariable] = "AVX2", [ForcedVerdicts.Variable] = "" },
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
        // Any verdict on bfloat16 and oneDNN is one the check may honestly give (Zen 5 rejects both at this width, and
        // CONIC_ARITHMETIC may force it); the native kernels are the last resort and must agree, and what is chosen agrees.
        Assert.True(trials.Single(t => t.Arithmetic == Native).Agrees, trials.Single(t => t.Arithmetic == Native).ToString());
        var choice = ArithmeticCheck.Select(trials, [Bf16, OneDnn, Native], [OneDnn, Native]);
        Assert.True(trials.Single(t => t.Arithmetic == choice.Training).Agrees);
        Assert.Equal(trials.First(t => t.Agrees).Arithmetic, choice.Training);
        Assert.All(trials, t => Assert.True(double.IsNaN(t.Error) || t.Error >= 0));
        foreach (var trial in trials.Where(t => t.RejectedBy != null))
            Assert.StartsWith($"{ForcedVerdicts.Variable}=", trial.RejectedBy);
        Assert.True(randn(3).allclose(expectedNext), "the check moved the random number stream");
        Assert.Equal(oneDnn, TorchRuntime.OneDnnEnabled);
        Assert.False(backbone.BFloat16Compute);
        foreach (var (name, value) in backbone.state_dict())
            Assert.True(value.eq(before[name]).all().item<bool>(), $"{name} changed");
    }

    [Fact]
    public void TheSuiteComputesWithoutNnpack()
    {
        // The native kernels are im2col and BLAS on every CPU: NNPACK, which cannot start on Zen 5, is switched off.
        TorchRuntime.Initialize("cpu", 0);
        Assert.False(TorchRuntime.NnpackEnabled);
    }

    /// <summary>A one-epoch pretraining under forced verdicts; asserts that it trained when it exits 0.</summary>
    static (int ExitCode, string StdOut, string StdErr) PretrainWithVerdicts(string verdicts)
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8), run = Path.Combine(data, "run");
        var result = CliRunner.Run(new Dictionary<string, string> { [ForcedVerdicts.Variable] = verdicts },
            "pretrain", "--data", data, "--run", run, "--instances", "32", "--batch-size", "16", "--epochs", "1",
            "--width", "8", "--no-eval", "--monitor-every", "0");
        if (result.ExitCode == 0) Assert.Equal(1, Training.Checkpoint.ReadHeader(new RunFolder(run).Checkpoint).CompletedEpochs);
        return result;
    }

    [Fact]
    public void ForcedVerdictsOfZen5TakeItsPathOnAnyCpu()
    {
        // bfloat16 and AVX-512 oneDNN rejected: the command reruns itself with oneDNN held to AVX2, which passes there.
        var (exitCode, _, stderr) = PretrainWithVerdicts("reject-bf16,reject-onednn");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("float32 convolutions (oneDNN): rejected by CONIC_ARITHMETIC=reject-onednn", stderr);
        Assert.Contains($"restarting with {ConvolutionArithmetic.IsaCapVariable}=AVX2", stderr);
        Assert.Contains("arithmetic: float32 convolutions (oneDNN, instructions capped at AVX2), checked against float64", stderr);
    }

    [Fact]
    public void WithOneDnnRejectedEvenUnderTheCapTheNativeKernelsTrainWithoutAFloodOfWarnings()
    {
        var (exitCode, _, stderr) = PretrainWithVerdicts("reject-bf16,reject-onednn,reject-onednn-avx2");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("arithmetic: float32 convolutions (native kernels, oneDNN off), checked against float64", stderr);
        Assert.Contains("rejected by CONIC_ARITHMETIC=reject-onednn-avx2", stderr);
        Assert.DoesNotContain("NNPACK", stderr);
        Assert.True(stderr.Split('\n').Length < 100, $"{stderr.Split('\n').Length} lines of stderr");
    }

    [Fact]
    public void AnUnknownForcedVerdictIsAOneLineError()
    {
        var (exitCode, _, stderr) = PretrainWithVerdicts("reject-bf16,reject-gpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("error: CONIC_ARITHMETIC=reject-bf16,reject-gpu: unknown verdict 'reject-gpu'; give any of reject-bf16, reject-onednn, reject-onednn-avx2", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }
}
