using Conic.Runtime;
using Conic.Training;

namespace Conic.Tests;

public class TimeBudgetTests
{
    static string[] BudgetRun(string data, string run) =>
    [
        "pretrain", "--data", data, "--run", run, "--instances", "64", "--batch-size", "16", "--width", "4", "--time-budget", "20s",
        "--warmup-epochs", "0.5", "--monitor-every", "0", "--no-eval", "--threads", "1", "--resume",
    ];

    [Fact]
    public void ABudgetRunStopsOnTimeAtRateZeroAndAResumedOneContinuesTheSameSchedule()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "budget");
        var folder = new RunFolder(run);

        // Killed once its first checkpoint is written, part-way through its budget.
        using (var process = CliRunner.Start(BudgetRun(data, run)))
        {
            var started = DateTime.UtcNow;
            while (!File.Exists(folder.Checkpoint) && !process.HasExited && DateTime.UtcNow - started < TimeSpan.FromMinutes(1)) Thread.Sleep(5);
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        var interrupted = Checkpoint.ReadHeader(folder.Checkpoint);
        Assert.InRange(interrupted.TrainingBudgetSeconds, 1, 20);
        Assert.True(interrupted.TrainingSeconds < interrupted.TrainingBudgetSeconds);

        var resumed = CliRunner.Run(BudgetRun(data, run));
        Assert.True(resumed.ExitCode == 0, resumed.StdErr);
        var finished = Checkpoint.ReadHeader(folder.Checkpoint);
        // The same plan, continued from the time already spent, to its end.
        Assert.Equal(interrupted.TrainingBudgetSeconds, finished.TrainingBudgetSeconds);
        Assert.True(finished.TrainingSeconds >= finished.TrainingBudgetSeconds);
        Assert.True(finished.Step > interrupted.Step);
        var metrics = new MetricsCsv(folder.Metrics);
        var elapsed = metrics.Column("elapsed_minutes").Select(e => e.Value).ToArray();
        Assert.Equal(metrics.Column("lr").Count, elapsed.Length);
        Assert.True(elapsed.Zip(elapsed.Skip(1)).All(pair => pair.Second > pair.First), "elapsed time must grow across the resume");
        Assert.InRange(elapsed[^1] * 60, 0.9 * finished.TrainingBudgetSeconds, finished.TrainingSeconds + 1);
        // The cosine reached (nearly) zero at the deadline: the base rate here is 0.12 * 16 / 256.
        Assert.InRange(metrics.Column("lr")[^1].Value, 0, 0.1 * 0.12 * 16 / 256);
        Assert.Contains("time budget: trained", resumed.StdErr);

        // A spent budget trains no further when resumed again.
        var again = CliRunner.Run(BudgetRun(data, run));
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.Equal(finished.Step, Checkpoint.ReadHeader(folder.Checkpoint).Step);
    }

    [Fact]
    public void ABudgetTooSmallForStartUpAndEvaluationIsAOneLineError()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        var result = CliRunner.Run("pretrain", "--data", data, "--run", Path.Combine(data, "tiny"), "--width", "4", "--time-budget", "1s");
        Assert.Equal(2, result.ExitCode);
        Assert.Matches(@"^error: --time-budget 1s: start-up took \d+ s and evaluation needs about \d+ s, which leaves no time to train; give at least \S+$",
                       result.StdErr.TrimEnd('\n').Split('\n')[^1]);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.False(Directory.Exists(Path.Combine(data, "tiny")));
    }

    [Fact]
    public void AFineTuneWithABudgetTrainsUntilItsTimeIsSpentAndAResumeTrainsNoFurther()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 16);
        string output = Path.Combine(data, "budgeted");
        string[] arguments = [.. CliRunner.Finetune("classification", data, "none", output, epochs: 1), "--time-budget", "3s"];
        var (exitCode, _, stderr) = CliRunner.Run(arguments);
        Assert.True(exitCode == 0, stderr);
        var metrics = new MetricsCsv(new RunFolder(output).Metrics);
        var elapsed = metrics.Column("elapsed_minutes");
        var rates = metrics.Column("lr");
        Assert.True(elapsed.Count > 1, "--epochs 1 gave way to the time budget");
        Assert.True(elapsed[^1].Value * 60 >= 3, $"stopped after {elapsed[^1].Value * 60:F2} s of a 3 s budget");
        // Warm-up over the first epoch, then the cosine follows the time: near its peak early, near zero at the end.
        double peak = new Transfer.FinetuneOptions().LearningRate;
        Assert.True(rates.Max(r => r.Value) > 0.5 * peak, $"highest rate {rates.Max(r => r.Value):G3} of {peak}");
        Assert.True(rates[^1].Value < 0.25 * peak, $"last rate {rates[^1].Value:G3} of {peak}");

        var again = CliRunner.Run([.. arguments, "--resume"]);
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.Equal(elapsed.Count, new MetricsCsv(new RunFolder(output).Metrics).Column("elapsed_minutes").Count);
    }
}
