using SkiaSharp;

namespace Conic.Tests;

public class LearningCurvesTests
{
    static string RunWithMonitor(string root, string name, params (double Minutes, double Knn)[] points)
    {
        string folder = Path.Combine(root, name);
        Directory.CreateDirectory(folder);
        var lines = new List<string> { "epoch,step,lr,loss,images_per_second,seconds,monitor_knn_top1,elapsed_minutes,communication_share" };
        lines.AddRange(points.Select((p, i) => FormattableString.Invariant($"{i + 1},{(i + 1) * 10},0.1,5,100,60,{p.Knn},{p.Minutes},")));
        File.WriteAllLines(Path.Combine(folder, "metrics.csv"), lines);
        return folder;
    }

    static SKBitmap Draw(string root, string png, string runs)
    {
        var (exitCode, _, stderr) = CliRunner.Run("curves", "--runs", runs, "--out", Path.Combine(root, png), "--title", "kNN per width");
        Assert.True(exitCode == 0, stderr);
        return SKBitmap.Decode(Path.Combine(root, png));
    }

    [Fact]
    public void CurvesDrawEveryRunsOnlineKnnAgainstMinutesInOnePicture()
    {
        string root = TestFolder.New();
        string narrow = RunWithMonitor(root, "w16", (1, 0.5), (8, 0.7), (17, 0.8));
        string wide = RunWithMonitor(root, "w32", (2, 0.4), (30, 0.75), (60, 0.85));

        using var one = Draw(root, "one.png", $"width 16={narrow}");
        using var both = Draw(root, "both.png", $"width 16={narrow},width 32={wide}");
        Assert.True(one.Width > 300 && one.Height > 200);
        Assert.Equal((one.Width, one.Height), (both.Width, both.Height));
        // The second run adds a line (and a legend entry): pixels of a colour the one-run chart does not have.
        var coloursOfOne = Colours(one);
        Assert.Contains(Colours(both), c => !coloursOfOne.Contains(c));
    }

    static HashSet<SKColor> Colours(SKBitmap bitmap) =>
        [.. bitmap.Pixels.Where(c => Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue)) > 80)];

    [Fact]
    public void CurvesRefuseAFolderWithoutMetricsAndRunsWithoutMonitorPoints()
    {
        string root = TestFolder.New();
        var (exitCode, _, stderr) = CliRunner.Run("curves", "--runs", $"a={root}", "--out", Path.Combine(root, "c.png"));
        Assert.Equal(2, exitCode);
        Assert.Contains($"{root}: no metrics.csv", stderr);

        string unmonitored = RunWithMonitor(root, "quiet");
        (exitCode, _, stderr) = CliRunner.Run("curves", "--runs", $"a={unmonitored}", "--out", Path.Combine(root, "c.png"));
        Assert.Equal(2, exitCode);
        Assert.Contains("no run has online kNN points", stderr);
        Assert.False(File.Exists(Path.Combine(root, "c.png")));
    }
}
