namespace Conic.Tests;

/// <summary>A fact that needs Debian's chromium; skipped, with the reason shown, where it is absent (outside CI).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string Chromium = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        Skip = ToolRequirement.SkipReason(File.Exists(Chromium) ? null : $"{Chromium} is absent (apt-get install chromium)");
    }
}

public class ReportInBrowserTests
{
    [ChromiumFact]
    public void ReportLoadsInHeadlessChromiumWithEveryImagePresent()
    {
        string data = SyntheticData.WriteIdx(trainCount: 96, testCount: 24, classes: 4);
        string run = Path.Combine(data, "run");
        var trained = CliRunner.Run("pretrain", "--data", data, "--run", run, "--instances", "64", "--batch-size", "32", "--epochs", "2",
                                    "--width", "4", "--threads", "1", "--warmup-epochs", "1", "--monitor-every", "1");
        Assert.True(trained.ExitCode == 0, trained.StdErr);

        // A checker page loads the report in a frame and writes what it found into its own DOM, which chromium dumps.
        string checker = Path.Combine(data, "check.html");
        File.WriteAllText(checker, """
            <!DOCTYPE html><html><body><div id="result">pending</div>
            <iframe id="report" src="run/report.html" width="1200" height="800"></iframe>
            <script>
            document.getElementById('report').addEventListener('load', () => {
              const doc = document.getElementById('report').contentDocument;
              const images = Array.from(doc.images);
              const broken = images.filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0));
              document.getElementById('result').textContent =
                `images ${images.length} broken ${broken.length} title ${doc.title}`;
            });
            </script></body></html>
            """);
        string dom = RunChromium("--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", new Uri(checker).AbsoluteUri);
        Assert.Contains("images 7 broken 0 title Conic run", dom);

        string screenshot = Path.Combine(run, "report.png");
        RunChromium("--window-size=1200,4000", $"--screenshot={screenshot}", new Uri(Path.Combine(run, "report.html")).AbsoluteUri);
        Assert.True(new FileInfo(screenshot).Length > 10_000, "the screenshot is empty");
    }

    static string RunChromium(params string[] arguments)
    {
        var (exitCode, stdout, stderr) = ExternalProgram.Run(ChromiumFactAttribute.Chromium,
            new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run" }.Concat(arguments).ToArray());
        Assert.True(exitCode == 0, stderr);
        return stdout;
    }
}
