using System.CommandLine;
using Conic.Evaluation;
using Conic.Reporting;

namespace Conic.Cli.Commands;

/// <summary><c>conic eval</c>: weighted kNN and linear probe of a run's saved encoder; writes eval.json, report.md and report.html.</summary>
static class EvalCommand
{
    public static Command Create()
    {
        var run = FinishedRun.RunOption();
        var data = FinishedRun.DataOption();
        var device = FinishedRun.DeviceOption();
        var command = new Command("eval",
            "Evaluates the encoder saved in a run folder on frozen features: weighted kNN (k=200, T=0.07, cosine) and a linear probe, " +
            "trained on the train split and measured on the test split. Writes eval.json, report.md and report.html.") { run, data, device };
        command.SetAction(result => Run(result.GetValue(run)!, result.GetValue(data), result.GetValue(device)));
        return command;
    }

    static int Run(string run, string? data, string? device)
    {
        using var runLock = new Runtime.RunFolder(run).Lock(create: false);
        using var model = FinishedRun.LoadModel(run, device);
        var splits = FinishedRun.LoadData(model, data);
        var result = Evaluator.EvaluateRun(model, run, splits, Console.Error);
        Console.Error.WriteLine($"report: {MarkdownReport.Write(run, model.Options, result)}");
        // The HTML report shows the evaluation too: rewritten, not left stale.
        Console.Error.WriteLine($"report: {HtmlReport.Write(run, model, splits, log: Console.Error)}");
        foreach (string warning in RunDiagnosis.Warnings(run, result)) Console.Error.WriteLine($"warning: {warning}");
        return 0;
    }
}
