using Conic.Data;
using Conic.Reporting;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic report</c>: a run's self-contained HTML report, optionally with a second run's activation maps beside it.</summary>
static class ReportCommand
{
    public static int Run(string[] args)
    {
        string run = new PretrainOptions().RunDirectory;
        string? compare = null, data = null, device = null;
        var table = new OptionTable("report",
            "Writes report.html into a run folder: evaluation, training curves, activation maps of fixed test images (beside\n" +
            "a second run's with --compare), nearest-neighbour retrieval and the configuration. Opens from disk, no server.");
        table.Value("--run", "DIR", "run folder with checkpoint.bin", () => run, v => run = v);
        table.Value("--compare", "DIR", "a second run whose activation maps are shown under this run's", () => "none", v => compare = v);
        table.Value("--data", "PATH", "dataset (default: the one the run was trained on)", () => "from the run", v => data = v);
        table.Value("--device", "DEV", "cpu, cuda or cuda:N", () => "from the run", v => device = v);
        if (!table.Parse(args)) return 0;
        using var runLock = Runtime.RunLock.Acquire(run, create: false);

        using var model = RunFolder.LoadModel(run, device);
        using var second = compare == null ? null : RunFolder.LoadModel(compare, device ?? model.Options.Device);
        if (second != null && second.Backbone.Options.InputChannels != model.Backbone.Options.InputChannels)
            throw new ConicException($"{compare}: its encoder takes {second.Backbone.Options.InputChannels} channels, {run}'s takes {model.Backbone.Options.InputChannels}");
        var splits = RunFolder.LoadData(model, data);
        Console.Error.WriteLine($"report: {HtmlReport.Write(run, model, splits, second, compare, Console.Error)}");
        return 0;
    }
}
