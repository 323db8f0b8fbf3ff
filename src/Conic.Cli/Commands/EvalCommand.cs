using Conic.Data;
using Conic.Evaluation;
using Conic.Reporting;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic eval</c>: weighted kNN and linear probe of a run's saved encoder; writes eval.json, report.md and report.html.</summary>
static class EvalCommand
{
    public static int Run(string[] args)
    {
        string run = new PretrainOptions().RunDirectory;
        string? data = null, device = null;
        var table = new OptionTable("eval",
            "Evaluates the encoder saved in a run folder on frozen features: weighted kNN (k=200, T=0.07, cosine) and a\n" +
            "linear probe, trained on the train split and measured on the test split. Writes eval.json, report.md and report.html.");
        table.Value("--run", "DIR", "run folder with checkpoint.bin", () => run, v => run = v);
        table.Value("--data", "PATH", "dataset (default: the one the run was trained on)", () => "from the run", v => data = v);
        table.Value("--device", "DEV", "cpu, cuda or cuda:N", () => "from the run", v => device = v);
        if (!table.Parse(args)) return 0;
        using var runLock = Runtime.RunLock.Acquire(run, create: false);

        using var model = RunFolder.LoadModel(run, device);
        var splits = RunFolder.LoadData(model, data);
        var result = Evaluator.EvaluateRun(model, run, splits, Console.Error);
        Console.Error.WriteLine($"report: {MarkdownReport.Write(run, model.Options, result)}");
        // The HTML report shows the evaluation too: rewritten, not left stale.
        Console.Error.WriteLine($"report: {HtmlReport.Write(run, model, splits, log: Console.Error)}");
        foreach (string warning in RunDiagnosis.Warnings(run, result)) Console.Error.WriteLine($"warning: {warning}");
        return 0;
    }
}
