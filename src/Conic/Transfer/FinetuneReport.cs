using System.Text.Json;
using Conic.Reporting;
using Conic.Runtime;
using Conic.Training;

namespace Conic.Transfer;

/// <summary>
/// report.html of a fine-tune run: the result, the training curves (loss and the validation scores per epoch), the
/// predictions picture and the configuration, in one self-contained page like a pretraining run's report.
/// </summary>
static class FinetuneReport
{
    public static string Write(RunFolder folder, FinetuneOptions options, IReadOnlyList<string> result)
    {
        var html = HtmlReport.Begin($"Conic fine-tune {folder.Directory}");
        html.AppendLine($"<p>{HtmlReport.Encode(options.Task.ToString().ToLowerInvariant())} on {HtmlReport.Encode(options.DataPath ?? "Fashion-MNIST")}, " +
                        $"backbone {HtmlReport.Encode(options.StartingPoint())}{(options.FreezeBackbone ? " (frozen)" : "")}, {options.Epochs} epochs, " +
                        $"batch {options.BatchSize}, seed {options.Seed}.</p>");
        html.AppendLine("<h2>Result</h2>");
        html.AppendLine($"<pre>{HtmlReport.Encode(string.Join("\n", result))}</pre>");

        var metrics = new MetricsCsv(folder.Metrics);
        (string, double[], double[]) Series(string column)
        {
            var points = metrics.Column(column);
            return (column, points.Select(p => (double)p.Epoch).ToArray(), points.Select(p => p.Value).ToArray());
        }
        html.AppendLine("<h2>Training</h2>");
        HtmlReport.Figure(html, Figures.LineChart("Training loss", "epoch", "loss", [Series("loss")]), "loss per epoch");
        var validation = metrics.Columns().Where(c => c.StartsWith("val_", StringComparison.Ordinal)).Select(Series).ToArray();
        if (validation.Length > 0) HtmlReport.Figure(html, Figures.LineChart("Validation", "epoch", "score", validation), "validation scores per epoch");

        string pictures = Path.Combine(folder.Directory, "predictions.png");
        if (File.Exists(pictures))
        {
            html.AppendLine("<h2>Predictions on validation images</h2>");
            HtmlReport.Figure(html, File.ReadAllBytes(pictures), "predictions");
        }
        html.AppendLine("<h2>Configuration</h2>");
        html.AppendLine($"<pre>{HtmlReport.Encode(JsonSerializer.Serialize(options, RunJson.Options))}</pre>");
        html.AppendLine("</body></html>");
        string path = Path.Combine(folder.Directory, HtmlReport.FileName);
        AtomicFile.WriteText(path, html.ToString());
        return path;
    }
}
