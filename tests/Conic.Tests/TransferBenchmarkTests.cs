namespace Conic.Tests;

public class TransferBenchmarkTests
{
    [Fact]
    public void TransferTableFinetunesEveryRunForBothTasksAndRerunsReadTheRowsBack()
    {
        string scenes = SyntheticData.WriteScenes(train: 16, val: 8);
        string pretrained = CliRunner.PretrainOneEpoch(SyntheticData.WriteIdx(trainCount: 64, testCount: 8), instances: 64, batchSize: 32, width: 4, threads: 1);
        string output = Path.Combine(scenes, "transfer");
        string[] command = ["transfer", "--runs", $"random=none,tiny={pretrained}", "--data", scenes, "--out", output, "--epochs", "1", "--batch-size", "8", "--threads", "1"];

        var (exitCode, stdout, stderr) = CliRunner.Run(command);
        Assert.True(exitCode == 0, stderr);
        var table = File.ReadAllLines(Path.Combine(output, "transfer.md"));
        var random = table.Single(l => l.StartsWith("| random |", StringComparison.Ordinal)).Split('|');
        var tiny = table.Single(l => l.StartsWith("| tiny |", StringComparison.Ordinal)).Split('|');
        Assert.All(new[] { random[2], random[5], tiny[2], tiny[5] }, cell => Assert.InRange(double.Parse(cell, System.Globalization.CultureInfo.InvariantCulture), 0, 100));
        Assert.Equal("", random[7].Trim());  // no encoder of its own to look at
        Assert.Matches(@"^ \d+\.\d\d \(\d+\.\d\d\) $", tiny[7]);
        Assert.Equal(4, Directory.GetDirectories(output).Length);
        Assert.Contains("| tiny |", stdout);

        // Finished rows are read back: nothing is fine-tuned again.
        var again = CliRunner.Run(command);
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.DoesNotContain("epoch 1/1", again.StdErr);
        Assert.Equal(table, File.ReadAllLines(Path.Combine(output, "transfer.md")));
    }
}
