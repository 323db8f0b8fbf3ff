using System.Globalization;
using Conic.Evaluation;

namespace Conic.Tests;

public class TransferBenchmarkTests
{
    [Fact]
    public void TransferTableFinetunesEveryRunWithEverySeedAndRerunsReadTheRowsBack()
    {
        string scenes = SyntheticData.WriteScenes(train: 16, val: 8);
        string pretrained = CliRunner.PretrainOneEpoch(SyntheticData.WriteIdx(trainCount: 64, testCount: 8), instances: 64, batchSize: 32, width: 4, threads: 1);
        string output = Path.Combine(scenes, "transfer");
        string[] command = ["transfer", "--runs", $"random=none,tiny={pretrained}", "--data", scenes, "--out", output, "--epochs", "1", "--batch-size", "8",
                            "--seeds", "2", "--threads", "1"];

        var (exitCode, stdout, stderr) = CliRunner.Run(command);
        Assert.True(exitCode == 0, stderr);
        var table = File.ReadAllLines(Path.Combine(output, "transfer.md"));
        var random = table.Single(l => l.StartsWith("| random |", StringComparison.Ordinal)).Split('|');
        var tiny = table.Single(l => l.StartsWith("| tiny |", StringComparison.Ordinal)).Split('|');
        Assert.All(new[] { random[2], tiny[2] }, cell => Assert.Equal("2", cell.Trim()));
        Assert.All(new[] { random[3], random[5], tiny[3], tiny[5] }, cell => Assert.Matches(@"^ \d+\.\d\d ± \d+\.\d\d $", cell));
        Assert.Equal(" reference ", tiny[8]);  // the first pretrained row, by default
        Assert.Matches(@"^ (above|below|not separable); (above|below|not separable) $", random[8]);
        Assert.Equal("", random[9].Trim());  // no encoder of its own to look at
        Assert.Matches(@"^ \d+\.\d\d \(\d+\.\d\d\) $", tiny[9]);
        Assert.Equal(8, Directory.GetDirectories(output).Length);  // 2 rows × 2 seeds × 2 tasks
        Assert.Contains("| tiny |", stdout);

        // Every fine-tune is a sample line, and the table's means are theirs.
        var samples = File.ReadAllLines(Path.Combine(output, "transfer-samples.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["random:0", "random:1", "tiny:0", "tiny:1"], samples.Select(s => $"{s[0]}:{s[2]}"));
        double tinyMeanIoU = samples.Where(s => s[0] == "tiny").Average(s => double.Parse(s[3], CultureInfo.InvariantCulture));
        Assert.Equal(tinyMeanIoU, double.Parse(tiny[3].Split('±')[0], CultureInfo.InvariantCulture), 0.011);

        // Finished rows are read back: nothing is fine-tuned again.
        var again = CliRunner.Run(command);
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.DoesNotContain("epoch 1/1", again.StdErr);
        Assert.Equal(table, File.ReadAllLines(Path.Combine(output, "transfer.md")));
    }

    [Fact]
    public void ATransferRowNamingAMissingRunOrReferenceIsRefusedInOneLine()
    {
        string scenes = SyntheticData.WriteScenes(train: 4, val: 2);
        string missing = Path.Combine(scenes, "no-such-run");
        var (exitCode, _, stderr) = CliRunner.Run("transfer", "--runs", $"conic={scenes}+{missing}", "--data", scenes, "--out", Path.Combine(scenes, "t"));
        Assert.Equal(2, exitCode);
        Assert.Contains($"{scenes}: no checkpoint.bin", stderr);

        (exitCode, _, stderr) = CliRunner.Run("transfer", "--runs", "random=none", "--reference", "conic", "--data", scenes, "--out", Path.Combine(scenes, "t"));
        Assert.Equal(2, exitCode);
        Assert.Contains("--reference: no row is named 'conic'", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void AMeanIntervalIsStudentsTAndSeparatesOnlyWhereIntervalsDoNotOverlap()
    {
        // Hand-worked: mean 0.22, standard deviation 0.02, t(0.975, 2 df) = 4.302653 → half-width 4.302653 · 0.02 / √3 = 0.049683.
        var a = MeanInterval.Of([0.20, 0.22, 0.24]);
        Assert.Equal(0.22, a.Mean, 12);
        Assert.Equal(0.049683, a.HalfWidth, 6);
        Assert.Equal("22.00 ± 4.97", a.ToPercent());

        var clearlyAbove = MeanInterval.Of([0.30, 0.31, 0.32]);
        var overlapping = MeanInterval.Of([0.25, 0.27, 0.29]);
        Assert.Equal(1, clearlyAbove.Separation(a));
        Assert.Equal(-1, a.Separation(clearlyAbove));
        Assert.Equal(0, overlapping.Separation(a));

        var single = MeanInterval.Of([0.9]);
        Assert.False(single.HasInterval);
        Assert.Equal("90.00", single.ToPercent());
        Assert.Equal(0, single.Separation(a));  // one value is never beyond noise, however far
    }
}
