using System.CommandLine;
using Conic.Data;
using Conic.Training;
using Conic.Workflows;
using Conic.Runtime;

namespace Conic.Cli.Commands;

/// <summary><c>conic pretrain</c>: settings to <see cref="PretrainOptions"/>, then train, evaluate and report.</summary>
static class PretrainCommand
{
    const string Summary =
        "Pretrains an encoder with a self-supervised method, checkpointing every epoch, then evaluates it on the test split " +
        "(weighted kNN, linear probe) and writes eval.json, report.md and report.html into the run folder.";

    static readonly Option<string> Config = new("--config")
    {
        HelpName = "FILE", Description = "settings from a YAML or JSON file (any run's config.json is one); the flags given refine it",
    };
    static readonly Option<bool> Resume = new("--resume")
    {
        Description = "continue the run folder's last checkpoint with its config.json (flags may change where it runs, or add epochs)",
    };
    static readonly Option<bool> NoEval = new("--no-eval") { Description = "skip the evaluation after pretraining" };

    public static Command Create()
    {
        var command = new Command("pretrain", "pretrain an encoder on unlabelled images, then evaluate it (kNN, linear probe)");
        var settings = new SettingOptions(command, withMethods: true);
        command.Add(Config);
        command.Add(Resume);
        command.Add(NoEval);
        settings.UseGroupedHelp(command, Summary, result => Options(result, settings), Config, Resume, NoEval);
        command.SetAction(result => Run(result, settings));
        return command;
    }

    /// <summary>The flags applied to the <c>--config</c> file, or with <c>--resume</c> the run's own config.json, else to the defaults.</summary>
    static PretrainOptions Options(ParseResult result, SettingOptions settings)
    {
        string saved = new RunFolder(settings.Given(result, PretrainOptions.RunFlag) ?? new PretrainOptions().RunDirectory).Config;
        var start = result.GetValue(Config) is string config ? ConfigFile.Read(config)
            : result.GetValue(Resume) && File.Exists(saved) ? RunJson.Read<PretrainOptions>(saved)
            : new PretrainOptions();
        return settings.Apply(result, start);
    }

    static int Run(ParseResult result, SettingOptions settings)
    {
        var options = Options(result, settings);
        options.Validate();  // before the data loads, so that a bad option fails at once
        using var runLock = new Runtime.RunFolder(options.RunDirectory).Lock();

        var data = options.LoadData(Console.Error);
        Console.Error.WriteLine($"data: {data.Train.Count} training images {data.Train.Channels}x{data.Train.Height}x{data.Train.Width} from {data.Train.Source}" +
                                (data.Test != null ? $", {data.Test.Count} test images" : ""));
        foreach (string note in data.Notes) Console.Error.WriteLine($"note: {note}");
        using var run = PretrainRun.Execute(options, data, Console.Error, result.GetValue(Resume), evaluate: !result.GetValue(NoEval),
                                            startedUtc: System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime());
        return 0;
    }
}
