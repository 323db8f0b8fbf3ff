using System.CommandLine;
using Conic.Reporting;

namespace Conic.Cli.Commands;

/// <summary><c>conic report</c>: a run's self-contained HTML report, optionally with a second run's activation maps beside it.</summary>
static class ReportCommand
{
    public static Command Create()
    {
        var run = FinishedRun.RunOption();
        var compare = new Option<string?>("--compare") { HelpName = "DIR", Description = "a second run whose activation maps are shown under this run's" };
        var data = FinishedRun.DataOption();
        var device = FinishedRun.DeviceOption();
        var command = new Command("report",
            "Writes report.html into a run folder: evaluation, training curves, activation maps of fixed test images (beside a second " +
            "run's, given below), nearest-neighbour retrieval and the configuration. Opens from disk, no server.") { run, compare, data, device };
        command.SetAction(result => Run(result.GetValue(run)!, result.GetValue(compare), result.GetValue(data), result.GetValue(device)));
        return command;
    }

    static int Run(string run, string? compare, string? data, string? device)
    {
        using var runLock = new Runtime.RunFolder(run).Lock(create: false);
        using var model = FinishedRun.LoadModel(run, device);
        using var second = compare == null ? null : FinishedRun.LoadModel(compare, device ?? model.Options.Device);
        if (second != null && second.Backbone.Options.InputChannels != model.Backbone.Options.InputChannels)
            throw new ConicException($"{compare}: its encoder takes {second.Backbone.Options.InputChannels} channels, {run}'s takes {model.Backbone.Options.InputChannels}");
        var splits = FinishedRun.LoadData(model, data);
        Console.Error.WriteLine($"report: {HtmlReport.Write(run, model, splits, second, compare, Console.Error)}");
        return 0;
    }
}
