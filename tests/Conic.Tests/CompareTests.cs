using Conic.Workflows;

namespace Conic.Tests;

public class CompareTests
{
    [Fact]
    public void EntriesParseMethodBatchAndPreset()
    {
        Assert.Equal(new ComparisonEntry("simclr", 32, null), ComparisonEntry.Parse("simclr@32"));
        Assert.Equal(new ComparisonEntry("mocov2", null, "infomin"), ComparisonEntry.Parse("mocov2+infomin"));
        Assert.Equal("conic@32+infomin", ComparisonEntry.Parse("CONIC@32+infomin").Label);
        Assert.StartsWith("--methods: unknown method 'nosuch' (known: conic, instdisc, mocov1, mocov2, simclr, byol, swav",
                          Assert.Throws<ConicException>(() => ComparisonEntry.Parse("nosuch")).Message);
        Assert.Throws<ConicException>(() => ComparisonEntry.Parse("conic@x"));
        Assert.Throws<ConicException>(() => ComparisonEntry.Parse("conic+nope"));
        Assert.Throws<ConicException>(() => ComparisonEntry.Parse("conic:lambda"));
    }

    [Fact]
    public void EntriesCarryTheirOwnPretrainingOptions()
    {
        string data = SyntheticData.WriteIdx(trainCount: 96, testCount: 32);
        string root = Path.Combine(data, "compare");
        var (exitCode, stdout, stderr) = CliRunner.Run("compare", "--data", data, "--run", root, "--methods", "conic:lambda=0:seed=1",
                                                       "--instances", "64", "--batch-size", "32", "--epochs", "1", "--width", "4");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("| conic:lambda=0:seed=1 | 32 |", stdout);
        var config = File.ReadAllText(Path.Combine(root, "conic-lambda0-seed1", "config.json"));
        Assert.Contains("\"lambda\": 0", config);
        Assert.Contains("\"seed\": 1", config);

        var unknown = CliRunner.Run("compare", "--data", data, "--run", root, "--methods", "conic:nosuch=1", "--epochs", "1");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("error: --methods: 'conic:nosuch=1': --nosuch: not a pretraining setting", unknown.StdErr);
    }

    [Fact]
    public void CompareKeepsOneTableOfEveryEntryInItsFolder()
    {
        string data = SyntheticData.WriteIdx(trainCount: 96, testCount: 32);
        string root = Path.Combine(data, "compare");
        var (exitCode, stdout, stderr) = CliRunner.Run("compare", "--data", data, "--run", root, "--methods", "conic,byol@16",
                                                       "--instances", "64", "--batch-size", "32", "--epochs", "1", "--width", "4");
        Assert.True(exitCode == 0, stderr);
        var csv = File.ReadAllLines(Path.Combine(root, "compare.csv"));
        Assert.Equal("method,batch_size,knn_top1,linear_top1,train_seconds,images_per_second,peak_memory_mib", csv[0]);
        Assert.StartsWith("conic,32,", csv[1]);
        Assert.StartsWith("byol@16,16,", csv[2]);
        Assert.Contains("| byol@16 | 16 |", stdout);
        Assert.Contains("raw pixels (floor)", stdout);
        // The entries' online kNN against their minutes of training, one chart.
        Assert.Contains("![online kNN against training time](learning-curves.png)", stdout);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(root, "learning-curves.png"))[..4]);

        // A rerun reads finished entries back instead of training them again.
        var rerun = CliRunner.Run("compare", "--data", data, "--run", root, "--methods", "conic,byol@16",
                                  "--instances", "64", "--batch-size", "32", "--epochs", "1", "--width", "4");
        Assert.Equal(0, rerun.ExitCode);
        Assert.Contains("already done", rerun.StdErr);

        // A later command adds its rows to the folder's table instead of replacing it.
        var more = CliRunner.Run("compare", "--data", data, "--run", root, "--methods", "simclr@16",
                                 "--instances", "64", "--batch-size", "32", "--epochs", "1", "--width", "4");
        Assert.True(more.ExitCode == 0, more.StdErr);
        Assert.Equal(["method", "conic", "byol@16", "simclr@16"],
                     File.ReadAllLines(Path.Combine(root, "compare.csv")).Select(line => line.Split(',')[0]));

        // A finished entry is never passed off as the result of other options.
        var changed = CliRunner.Run("compare", "--data", data, "--run", root, "--methods", "conic",
                                    "--instances", "64", "--batch-size", "32", "--epochs", "2", "--width", "4");
        Assert.Equal(2, changed.ExitCode);
        Assert.Contains($"{Path.Combine(root, "conic", "config.json")}: this finished entry was trained with other options", changed.StdErr);
    }
}
