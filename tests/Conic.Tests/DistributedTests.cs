using System.Diagnostics;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Tests;

/// <summary>
/// A fact that runs MPI ranks: skipped, with the reason shown, where Open MPI's mpirun is absent — except in CI
/// (CI set), where .ci/run installs Open MPI and a missing mpirun must fail rather than skip.
/// </summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public static readonly string? Mpirun = new[] { "/usr/bin/mpirun", "/usr/local/bin/mpirun" }.FirstOrDefault(File.Exists);

    /// <summary>Why MPI tests skip here, or null when they run.</summary>
    public static string? SkipReason => Mpirun == null && Environment.GetEnvironmentVariable("CI") == null
        ? "mpirun is absent (apt-get install openmpi-bin libopenmpi-dev)"
        : null;

    public MpiFactAttribute() => Skip = SkipReason;
}

/// <summary>The theory form of <see cref="MpiFactAttribute"/>.</summary>
public sealed class MpiTheoryAttribute : TheoryAttribute
{
    public MpiTheoryAttribute() => Skip = MpiFactAttribute.SkipReason;
}

/// <summary>
/// Data-parallel training on two MPI ranks on this machine: collectives, the sharded ConIC head, equivalence with one
/// process, resuming on another number of ranks, and the faults (no mpirun, ranks that disagree, a rank that dies or
/// hangs). Float32 with libtorch's own convolution kernels, so that every CPU computes the same.
/// </summary>
public class DistributedTests
{
    static string MpirunPath => MpiFactAttribute.Mpirun ?? throw new InvalidOperationException("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)");

    static readonly string[] RootOption = Environment.UserName == "root" ? ["--allow-run-as-root"] : [];

    static string[] Run(string data, string run, int epochs, params string[] extra) =>
    [
        "pretrain", "--data", data, "--run", run, "--instances", "64", "--batch-size", "16", "--epochs", epochs.ToString(), "--width", "8",
        "--threads", "1", "--warmup-epochs", "0", "--monitor-every", "0", "--no-eval", "--precision", "fp32", "--conv-kernels", "native", .. extra,
    ];

    /// <summary>Runs mpirun with the given per-rank programs (several for MPMD: "A : B"), returning exit code and output.</summary>
    static (int ExitCode, string StdOut, string StdErr) Mpirun(params string[] args)
    {
        var info = new ProcessStartInfo(MpirunPath) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in RootOption.Concat(["--oversubscribe", "--bind-to", "none"]).Concat(args)) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// The two runs' models agree within <paramref name="tolerance"/> relative over all their float tensors
    /// (‖a − b‖ / ‖b‖ of everything), and no one tensor differs by more than that share of the whole model's norm.
    /// Exact equality is not to be had: one float32 step split over two ranks sums in another order than one process
    /// (as two threads do), and training amplifies that rounding; near-zero tensors (fresh BatchNorm biases) then differ
    /// by a large share of their own tiny norm.
    /// With <paramref name="withRunningStatistics"/> false, BatchNorm's running statistics are left out (per-rank
    /// BatchNorm keeps rank 0's batches' statistics, as DDP does; they do not enter training).
    /// </summary>
    static void AssertSameState(string expectedRun, string actualRun, double tolerance, bool withRunningStatistics = true)
    {
        using var expected = PretrainedModel.Load(expectedRun);
        using var actual = PretrainedModel.Load(actualRun);
        var expectedState = expected.Method.state_dict();
        double squaredDifference = 0, squaredNorm = 0;
        var differences = new List<(string Name, double Difference)>();
        foreach (var (name, value) in actual.Method.state_dict())
        {
            var reference = expectedState[name];
            Assert.Equal(reference.shape, value.shape);
            if (!reference.is_floating_point())
            {
                if (withRunningStatistics) Assert.True(reference.eq(value).all().item<bool>(), $"{name} differs");
                continue;
            }
            if (!withRunningStatistics && (name.EndsWith("running_mean", StringComparison.Ordinal) || name.EndsWith("running_var", StringComparison.Ordinal))) continue;
            var expected64 = reference.to_type(ScalarType.Float64);
            double norm = expected64.norm().item<double>();
            double difference = value.to_type(ScalarType.Float64).sub(expected64).norm().item<double>();
            (squaredDifference, squaredNorm) = (squaredDifference + difference * difference, squaredNorm + norm * norm);
            differences.Add((name, difference));
        }
        double modelNorm = Math.Sqrt(squaredNorm), relative = Math.Sqrt(squaredDifference) / modelNorm;
        var worst = differences.MaxBy(d => d.Difference);
        Assert.True(relative <= tolerance && worst.Difference <= tolerance * modelNorm,
                    $"models differ by {relative:G3} relative; most in {worst.Name}, by {worst.Difference / modelNorm:G3} of the model's norm");
    }

    /// <summary>The loss columns of two runs' metrics.csv, equal to 5 significant digits.</summary>
    static void AssertSameLosses(string expectedRun, string actualRun)
    {
        static double[][] Losses(string run) => File.ReadLines(new RunFolder(run).Metrics).Skip(1)
            .Select(l => l.Split(',').Skip(3).Take(2).Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var (expected, actual) = (Losses(expectedRun), Losses(actualRun));
        Assert.Equal(expected.Length, actual.Length);
        for (int row = 0; row < expected.Length; row++)
        for (int column = 0; column < expected[row].Length; column++)
            Assert.True(Math.Abs(actual[row][column] - expected[row][column]) <= 1e-5 * Math.Abs(expected[row][column]) + 1e-6,
                        $"epoch {row + 1}: loss {actual[row][column]} against {expected[row][column]}");
    }

    [MpiFact]
    public void CollectivesTheirGradientsAndTheShardedClassifierAreExactOnTwoRanks()
    {
        string checks = Path.Combine(AppContext.BaseDirectory, "Conic.MpiChecks.dll");
        var (exitCode, stdout, stderr) = Mpirun("-np", "2", "dotnet", checks);
        Assert.True(exitCode == 0, stdout + stderr);
        Assert.Equal(2 * 13, stdout.Split('\n').Count(line => line.Contains(": ok ", StringComparison.Ordinal)));
    }

    [MpiTheory]
    [InlineData("conic", "--classifier-rows-start", "embedding", "--sync-bn", "on")]
    [InlineData("simclr", "--sync-bn", "on")]
    [InlineData("byol", "--sync-bn", "on")]
    [InlineData("swav", "--sync-bn", "on")]
    [InlineData("vicreg", "--sync-bn", "on")]
    [InlineData("instdisc", "--sync-bn", "on")]
    [InlineData("supervised", "--sync-bn", "on")]
    // MoCo's shuffle-BN keeps BatchNorm per group: two ranks run half the groups each, as its GPUs did.
    [InlineData("mocov2", "--sync-bn", "off")]
    public void TwoRanksWithHalfTheBatchReachTheWeightsOfOneProcessWithTheWholeBatch(string method, params string[] settings)
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string one = Path.Combine(data, "one"), two = Path.Combine(data, "two");
        string[] options = ["--method", method, .. settings];
        var single = CliRunner.Run(Run(data, one, 1, options));
        Assert.True(single.ExitCode == 0, single.StdErr);
        var parallel = CliRunner.Run([.. Run(data, two, 1, options), "--processes", "2"]);
        Assert.True(parallel.ExitCode == 0, parallel.StdOut + parallel.StdErr);
        Assert.Contains("distributed: 2 processes x 1 threads, batch 16 = 2 x 8", parallel.StdErr);
        AssertSameState(one, two, RankEquivalenceTolerance, withRunningStatistics: settings.Contains("on"));
        // The logged loss is the global batch's.
        AssertSameLosses(one, two);
    }

    /// <summary>
    /// How far one step on two ranks may land from one process, relative to the model, with the native kernels these
    /// tests use: the summation order of the CPU's BLAS decides it. Measured on AMD Zen 4 (2026-12-06, NNPACK off,
    /// also with oneDNN capped at AVX2): at most 4.3e-8 over all methods; on AMD Zen 5 (2026-12-06) SwAV 2.2e-5. The
    /// faults the test is for (a gradient summed instead of averaged, a rank's rows missing) change the step itself.
    /// </summary>
    const double RankEquivalenceTolerance = 1e-4;

    [MpiFact]
    public void ATwoRankRunKilledMidwayResumesOnOneRankToTheSameWeights()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string reference = Path.Combine(data, "reference"), run = Path.Combine(data, "killed");
        string[] options = ["--classifier-rows-start", "embedding", "--sync-bn", "on"];
        Assert.Equal(0, CliRunner.Run(Run(data, reference, 2, options)).ExitCode);

        using (var parallel = CliRunner.Start([.. Run(data, run, 2, options), "--processes", "2"]))
        {
            string checkpoint = new RunFolder(run).Checkpoint;
            var started = DateTime.UtcNow;
            while (!File.Exists(checkpoint) && !parallel.HasExited && DateTime.UtcNow - started < TimeSpan.FromMinutes(2)) Thread.Sleep(5);
            parallel.Kill(entireProcessTree: true);
            parallel.WaitForExit();
        }
        // Killed right after its first checkpoint, during the second epoch.
        Assert.Equal(1, Checkpoint.ReadHeader(new RunFolder(run).Checkpoint).CompletedEpochs);
        var resumed = CliRunner.Run([.. Run(data, run, 2, options), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.StdErr);
        Assert.Contains($"resuming {new RunFolder(run).Checkpoint} after epoch 1", resumed.StdErr);
        AssertSameState(reference, run, RankEquivalenceTolerance);
    }

    [Fact]
    public void DistributedWithoutMpirunIsAOneLineError()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        var result = CliRunner.Run([.. Run(data, Path.Combine(data, "run"), 1), "--distributed"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("error: --distributed: this process was not started by mpirun (OMPI_COMM_WORLD_SIZE is not set)", result.StdErr);
        Assert.DoesNotContain("   at ", result.StdErr);
    }

    [Fact]
    public void ProcessesWithoutOpenMpiInstalledIsAOneLineError()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        var result = CliRunner.Run(new Dictionary<string, string> { ["PATH"] = "/nonexistent" }, [.. Run(data, Path.Combine(data, "run"), 1), "--processes", "2"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("error: --processes 2: mpirun not found; install Open MPI ('apt-get install openmpi-bin libopenmpi-dev')", result.StdErr);
    }

    [MpiFact]
    public void AGlobalBatchThatDoesNotSplitOverTheRanksIsRefusedBeforeTraining()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        var result = CliRunner.Run([.. Run(data, Path.Combine(data, "run"), 1, "--batch-size", "15"), "--processes", "2"]);
        Assert.NotEqual(0, result.ExitCode);
        // Every rank refuses before any collective, so none waits for the other; mpirun may stop the slower rank
        // before it prints (seen once in CI), so its line may be missing.
        var errors = result.StdErr.Split('\n').Where(line => line.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(errors);
        Assert.All(errors, line => Assert.Equal("error: --batch-size 15: the global batch must split evenly over the 2 processes", line));
        Assert.False(File.Exists(Path.Combine(data, "run", "checkpoint.bin")));
    }

    [MpiFact]
    public void RanksStartedWithOtherOptionsStopWithAnErrorInsteadOfTrainingApart()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        string[] Rank(string seed) => ["-np", "1", "dotnet", CliRunner.CliPath, .. Run(data, run, 1, "--seed", seed), "--distributed", "--rank-timeout", "60"];
        var result = Mpirun([.. Rank("0"), ":", .. Rank("1")]);
        Assert.NotEqual(0, result.ExitCode);
        // Each rank says it and exits (mpirun may stop the slower one before it prints), and nothing was trained.
        var errors = result.StdErr.Split('\n').Where(line => line.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(errors);
        Assert.All(errors, line => Assert.StartsWith("error: --distributed: rank 1 has other options than rank 0", line));
        Assert.False(File.Exists(new RunFolder(run).Checkpoint));
    }

    /// <summary>A one-epoch run without --conv-kernels and --precision, so that the arithmetic check chooses.</summary>
    static string[] CheckedRun(string data, string run, int epochs = 1) =>
    [
        "pretrain", "--data", data, "--run", run, "--instances", "64", "--batch-size", "16", "--epochs", epochs.ToString(), "--width", "8",
        "--warmup-epochs", "0", "--monitor-every", "0", "--no-eval",
    ];

    /// <summary>One rank's command under the user's own mpirun (<c>--distributed</c>), which cannot restart its ranks.</summary>
    static string[] UsersMpirunRank(string data, string run) =>
        ["dotnet", CliRunner.CliPath, .. CheckedRun(data, run), "--distributed", "--rank-timeout", "120"];

    [MpiFact]
    public void RanksWhoseCheckRejectsOneDnnAreRestartedWithItCappedAtAvx2AsOneProcessIs()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        var result = CliRunner.Run(new Dictionary<string, string> { [ForcedVerdicts.Variable] = "reject-bf16,reject-onednn" },
                                   [.. CheckedRun(data, run), "--processes", "2"]);
        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("restarting the ranks with ONEDNN_MAX_CPU_ISA=AVX2", result.StdErr);
        Assert.Contains("launching: ONEDNN_MAX_CPU_ISA=AVX2 mpirun", result.StdErr);
        Assert.Contains("arithmetic: float32 convolutions (oneDNN, instructions capped at AVX2), checked against float64", result.StdErr);
        Assert.Contains("distributed: 2 processes", result.StdErr);
        Assert.Equal(1, Checkpoint.ReadHeader(new RunFolder(run).Checkpoint).CompletedEpochs);
    }

    [MpiFact]
    public void RanksAgreeOnTheArithmeticThatOneOfThemRejects()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        // The user's own mpirun, where ranks cannot be restarted: rank 1 alone rejects oneDNN, both take the native kernels.
        // Both hold oneDNN to AVX2, where it computes right on every CPU seen (at full AVX-512 Zen 5 rejects it at this
        // width by itself), so that rank 0's only reason to reject it is rank 1's verdict.
        string cap = $"{ConvolutionArithmetic.IsaCapVariable}=AVX2";
        string[] rank = UsersMpirunRank(data, run);
        var result = Mpirun(["-np", "1", "env", "-u", ForcedVerdicts.Variable, cap, .. rank, ":",
                             "-np", "1", "env", $"{ForcedVerdicts.Variable}={ForcedVerdicts.RejectBFloat16},{ForcedVerdicts.RejectCappedOneDnn}", cap, .. rank]);
        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Contains("arithmetic: float32 convolutions (native kernels, oneDNN off), checked against float64", result.StdErr);
        Assert.Contains("float32 convolutions (oneDNN, instructions capped at AVX2): rejected by rank 1's check", result.StdErr);
        Assert.DoesNotContain("NNPACK", result.StdErr);
        Assert.Equal(1, Checkpoint.ReadHeader(new RunFolder(run).Checkpoint).CompletedEpochs);
    }

    [MpiFact]
    public void RanksThatRejectFullSpeedOneDnnUnderTheUsersMpirunAreToldToCapIt()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        string[] rank = UsersMpirunRank(data, run);
        string forced = $"{ForcedVerdicts.Variable}={ForcedVerdicts.RejectBFloat16},{ForcedVerdicts.RejectOneDnn}";
        var result = Mpirun(["-np", "2", "env", "-u", ConvolutionArithmetic.IsaCapVariable, forced, .. rank]);
        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Contains("arithmetic: float32 convolutions (native kernels, oneDNN off), checked against float64", result.StdErr);
        Assert.Contains("start them with 'mpirun -x ONEDNN_MAX_CPU_ISA=AVX2'", result.StdErr);
        Assert.Equal(1, Checkpoint.ReadHeader(new RunFolder(run).Checkpoint).CompletedEpochs);
    }

    [MpiFact]
    public void KillingTheLaunchingCommandEndsItsRanks()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        using var parallel = CliRunner.Start([.. Run(data, run, 400), "--processes", "2"]);
        WaitForRank(run, rank: 1, whenCheckpointExists: true);
        parallel.Kill(entireProcessTree: false);  // kill -9 of the command the user started; mpirun and the ranks are its children
        parallel.WaitForExit();
        Assert.True(RunProcesses.EndWithin(run, TimeSpan.FromSeconds(30)), "ranks still run 30 s after their command was killed");
    }

    [MpiFact]
    public void ARankKilledStopsTheOtherInsteadOfLeavingItWaiting()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        using var parallel = CliRunner.Start([.. Run(data, run, 400), "--processes", "2"]);
        var rank1 = WaitForRank(run, rank: 1, whenCheckpointExists: true);
        rank1.Kill();
        Assert.True(parallel.WaitForExit(TimeSpan.FromMinutes(1)), "the job still runs a minute after rank 1 was killed");
        Assert.NotEqual(0, parallel.ExitCode);
        Assert.Contains("signal 9", parallel.StdErr);
    }

    [MpiFact]
    public void ARankThatHangsMakesTheOthersStopAfterTheRankTimeout()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        using var parallel = CliRunner.Start([.. Run(data, run, 400), "--processes", "2", "--rank-timeout", "10"]);
        var rank1 = WaitForRank(run, rank: 1, whenCheckpointExists: true);
        // Stopped, rank 1 stays alive but never joins the next collective (a deadlock, a hung file system).
        Assert.Equal(0, Process.Start("kill", ["-STOP", rank1.Id.ToString()])!.WaitForExitAsync().Wait(10_000) ? 0 : 1);
        try
        {
            Assert.True(parallel.WaitForExit(TimeSpan.FromMinutes(1)), "the job still runs a minute after rank 1 hung");
            Assert.NotEqual(0, parallel.ExitCode);
            Assert.Contains("error: rank 0: waited 10 s in an MPI", parallel.StdErr);
        }
        finally
        {
            if (!rank1.HasExited) rank1.Kill();
        }
    }

    /// <summary>The process of MPI rank <paramref name="rank"/> training into <paramref name="run"/> (found by its command line and environment).</summary>
    static Process WaitForRank(string run, int rank, bool whenCheckpointExists)
    {
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < TimeSpan.FromMinutes(2))
        {
            if (!whenCheckpointExists || File.Exists(new RunFolder(run).Checkpoint))
            {
                foreach (string folder in Directory.GetDirectories("/proc"))
                {
                    if (!int.TryParse(Path.GetFileName(folder), out int pid)) continue;
                    try
                    {
                        string commandLine = File.ReadAllText(Path.Combine(folder, "cmdline")).Replace('\0', ' ');
                        if (!commandLine.Contains(run, StringComparison.Ordinal) || !commandLine.Contains("--distributed", StringComparison.Ordinal)) continue;
                        var environment = File.ReadAllText(Path.Combine(folder, "environ")).Split('\0');
                        if (environment.Contains($"OMPI_COMM_WORLD_RANK={rank}")) return Process.GetProcessById(pid);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
                    {
                        // The process ended while it was read.
                    }
                }
            }
            Thread.Sleep(20);
        }
        throw new TimeoutException($"rank {rank} of {run} did not start");
    }
}
