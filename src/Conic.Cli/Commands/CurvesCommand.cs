using System.CommandLine;
using Conic.Reporting;
using Conic.Runtime;

namespace Conic.Cli.Commands;

/// <summary><c>conic curves</c>: the online kNN of several pretraining runs against minutes, in one PNG.</summary>
static class CurvesCommand
{
    public static Command Create()
    {
        var runs = new Option<string>("--runs")
        {
            HelpName = "LIST", Required = true,
            Description = "comma-separated LABEL=RUN entries, RUN a pretrain run folder (or a conic compare entry's folder) trained with --monitor-every N",
        };
        var output = new Option<string>("--out") { HelpName = "FILE", Required = true, Description = "the PNG to write" };
        var title = new Option<string>("--title") { HelpName = "TEXT", Description = "the chart's title", DefaultValueFactory = _ => "Online kNN against training time" };
        var command = new Command("curves",
            "Draws the online kNN monitor of several pretraining runs against their minutes of training in one chart (PNG): " +
            "runs of different budgets, widths or machines side by side, e.g. accuracy against minutes per width.")
            { runs, output, title };
        command.SetAction(result =>
        {
            var entries = result.GetValue(runs)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Entry).ToList();
            string path = result.GetValue(output)!;
            if (!LearningCurves.Write(path, result.GetValue(title)!, entries))
                throw new ConicException("--runs: no run has online kNN points (pretrain with --monitor-every N)");
            Console.Error.WriteLine($"wrote {path}: {entries.Count} runs");
            return 0;
        });
        return command;
    }

    static (string Label, string RunFolder) Entry(string text)
    {
        var parts = text.Split('=', 2);
        if (parts.Length != 2 || parts[0].Length == 0) throw new ConicException($"--runs: '{text}' is not LABEL=RUN");
        if (!File.Exists(new RunFolder(parts[1]).Metrics)) throw new ConicException($"{parts[1]}: no metrics.csv (--runs {parts[0]}=RUN takes a pretrain run folder)");
        return (parts[0], parts[1]);
    }
}
