using System.Globalization;
using System.Text;
using System.Text.Json;
using Conic.Evaluation;
using Conic.Training;
using Conic.Runtime;

namespace Conic.Reporting;

/// <summary>report.md in a run folder: the evaluation against the raw-pixel floor, the training curve and the full configuration.</summary>
public static class MarkdownReport
{
    /// <summary>The report's file name in the run folder.</summary>
    public const string FileName = "report.md";

    /// <summary>Writes report.md into <paramref name="runDirectory"/>; returns its path.</summary>
    public static string Write(string runDirectory, PretrainOptions options, EvaluationResult? evaluation)
    {
        var text = new StringBuilder();
        text.AppendLine($"# Conic run `{runDirectory}`\n");
        text.AppendLine($"Method **{options.Method}**, {options.Backbone.Describe()}, " +
                        $"{options.LengthText}, batch {options.BatchSize}, seed {options.Seed}.\n");
        var warnings = RunDiagnosis.Warnings(runDirectory, evaluation);
        if (warnings.Count > 0) text.AppendLine(string.Concat(warnings.Select(w => $"**Warning: {w}.**\n\n")));
        if (evaluation != null)
        {
            text.AppendLine("## Evaluation (frozen backbone features, test split)\n");
            text.AppendLine("| measure | top-1 |\n|---|---|");
            text.AppendLine($"| weighted kNN (k={evaluation.KnnK}, T={evaluation.KnnTemperature}) | {evaluation.KnnTop1:P2} |");
            text.AppendLine($"| linear probe | {evaluation.LinearTop1:P2} |");
            text.AppendLine($"| kNN on raw pixels (floor) | {evaluation.RawPixelKnnTop1:P2} |");
            text.AppendLine($"| kNN on standardised pixels (stricter floor) | {evaluation.StandardizedPixelKnnTop1:P2} |");
            if (evaluation.RawPixelLinearTop1 is double pixelLinear) text.AppendLine($"| linear probe on raw pixels (floor of the linear probe) | {pixelLinear:P2} |");
            text.AppendLine();
            string verdict = evaluation.KnnTop1 > evaluation.RawPixelKnnTop1
                ? $"The encoder beats raw pixels by {100 * (evaluation.KnnTop1 - evaluation.RawPixelKnnTop1):F1} points of kNN accuracy " +
                  $"({100 * (evaluation.KnnTop1 - evaluation.StandardizedPixelKnnTop1):+0.0;-0.0} against standardised pixels)."
                : "The encoder does **not** beat raw pixels: it has not learned a useful representation yet (train longer or tune).";
            text.AppendLine(verdict + "\n");
        }
        string metricsPath = new RunFolder(runDirectory).Metrics;
        if (File.Exists(metricsPath))
        {
            var lines = File.ReadAllLines(metricsPath);
            text.AppendLine("## Training (per epoch)\n");
            text.AppendLine("| " + string.Join(" | ", lines[0].Split(',')) + " |");
            text.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", lines[0].Split(',').Length)));
            int every = Math.Max(1, (lines.Length - 1) / 20);
            for (int i = 1; i < lines.Length; i++)
                if ((i - 1) % every == 0 || i == lines.Length - 1)
                    text.AppendLine("| " + string.Join(" | ", lines[i].Split(',')) + " |");
            double seconds = new MetricsCsv(metricsPath).Column("seconds").Sum(e => e.Value);
            text.AppendLine($"\nTraining time: {TimeSpan.FromSeconds(seconds):hh\\:mm\\:ss}.\n");
        }
        text.AppendLine("## Configuration\n");
        text.AppendLine("```json\n" + JsonSerializer.Serialize(options, RunJson.Options) + "\n```");
        string path = Path.Combine(runDirectory, FileName);
        Runtime.AtomicFile.WriteText(path, text.ToString());
        return path;
    }
}
