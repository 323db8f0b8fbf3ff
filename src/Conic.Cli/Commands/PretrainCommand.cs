using System.CommandLine;
using Conic.Data;
using Conic.Distributed;
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
    static readonly Option<bool> Distributed = new("--distributed")
    {
        Description = "train as one rank of an Open MPI job ('mpirun -np N ./conic pretrain --distributed ...'): data-parallel over the ranks, " +
                      "--batch-size is the global batch; rank 0 writes the run folder",
    };
    static readonly Option<int> Processes = new("--processes")
    {
        HelpName = "N", Description = "run N data-parallel ranks on this machine (starts mpirun itself; threads per rank default to cores / N); 1 = this process",
    };
    static readonly Option<double> RankTimeout = new("--rank-timeout")
    {
        HelpName = "SECONDS", DefaultValueFactory = _ => 600,
        Description = "with --distributed: a rank that waits this long for the others (a rank died or hung) stops the job with an error",
    };

    public static Command Create()
    {
        var command = new Command("pretrain", "pretrain an encoder on unlabelled images, then evaluate it (kNN, linear probe)");
        var settings = SettingsOf(command, withMethods: true);
        command.Add(Config);
        command.Add(Resume);
        command.Add(NoEval);
        command.Add(Distributed);
        command.Add(Processes);
        command.Add(RankTimeout);
        settings.UseGroupedHelp(command, Summary, result => Options(result, settings), [Config, Resume, NoEval, Distributed, Processes, RankTimeout],
                                MethodTitle, options => [OtherMethods(options)]);
        command.SetAction(result => Run(result, settings));
        return command;
    }

    /// <summary>
    /// The pretraining settings as options of <paramref name="command"/>: every method's with <paramref name="withMethods"/>
    /// (pretrain), or only those every method shares (compare, whose entries choose the method); help shows the chosen
    /// method's group.
    /// </summary>
    public static SettingOptions<PretrainOptions> SettingsOf(Command command, bool withMethods) =>
        new(command,
            PretrainOptions.GeneralSettingGroups.SelectMany(g => g.Settings).Where(s => withMethods || s.Flag != PretrainOptions.MethodFlag)
                .Concat(withMethods ? PretrainOptions.AllMethodSettings().Select(m => m.Setting) : []),
            options => PretrainOptions.SettingGroups(options.MethodDefinition),
            (options, flag, text) => options.Set(flag, text));

    static string MethodTitle(PretrainOptions options, string title) =>
        title.StartsWith("method", StringComparison.Ordinal) ? $"{title}: {options.MethodDefinition.Summary}" : title;

    static CommandHelp.Section OtherMethods(PretrainOptions options) =>
        new("other methods ('conic pretrain --method NAME --help' lists a method's settings)",
            Methods.MethodRegistry.All.Where(m => m.Name != options.Method).Select(m => (m.Name, m.Summary)).ToList());

    /// <summary>The flags applied to the <c>--config</c> file, or with <c>--resume</c> the run's own config.json, else to the defaults.</summary>
    static PretrainOptions Options(ParseResult result, SettingOptions<PretrainOptions> settings)
    {
        string saved = new RunFolder(settings.Given(result, PretrainOptions.RunFlag) ?? new PretrainOptions().RunDirectory).Config;
        var start = result.GetValue(Config) is string config ? ConfigFile.Read(config)
            : result.GetValue(Resume) && File.Exists(saved) ? ConfigFile.Read(saved)
            : new PretrainOptions();
        var options = settings.Apply(result, start);
        return options with { Backbone = settings.BackboneOfInit(result, options.Backbone) };
    }

    static int Run(ParseResult result, SettingOptions<PretrainOptions> settings)
    {
        var options = Options(result, settings);
        options.Validate();  // before the data loads, so that a bad option fails at once
        int processCount = result.GetValue(Processes);
        // --processes 1 is this process (no mpirun).
        if (result.GetResult(Processes) != null && processCount != 1)
        {
            if (processCount < 1) throw new ConicException($"--processes {processCount}: give 1 or more");
            if (result.GetValue(Distributed)) throw new ConicException("--processes starts mpirun itself: leave out --distributed (or run mpirun yourself without --processes)");
            return MpiLaunch.Run(Environment.GetCommandLineArgs().Skip(1).ToArray(), processCount);
        }
        using var processes = result.GetValue(Distributed) ? MpiProcessGroup.Join(TimeSpan.FromSeconds(result.GetValue(RankTimeout))) : ProcessGroup.Single;
        if (processes is MpiProcessGroup)
        {
            // A rank cannot restart itself under mpirun: --processes N restarts all ranks; under the user's own
            // mpirun the arithmetic check picks another fallback instead.
            Models.ArithmeticCheck.RestartWithIsaCapAllowed = MpiLaunch.IsaCapRequest != null;
            if (options.Threads == 0) options = options with { Threads = MpiProcessGroup.ThreadsPerRank };
        }
        var folder = new Runtime.RunFolder(options.RunDirectory);
        if (result.GetValue(Resume) && File.Exists(folder.Checkpoint) && File.Exists(folder.Config) &&
            Trainer.ResumeConflicts(ConfigFile.Read(folder.Config), options) is { Count: > 0 } conflicts)
            throw new ConicException($"--resume continues the run in {options.RunDirectory} as it was made, but {string.Join(", ", conflicts)} " +
                                     $"differ{(conflicts.Count == 1 ? "s" : "")}; leave {(conflicts.Count == 1 ? "it" : "them")} out, or use a new --run folder");
        var log = processes.IsMain ? Console.Error : TextWriter.Null;
        using var runLock = processes.IsMain ? new Runtime.RunFolder(options.RunDirectory).Lock() : null;

        var data = options.LoadData(log);
        log.WriteLine($"data: {data.Train.Count} training images {data.Train.Channels}x{data.Train.Height}x{data.Train.Width} from {data.Train.Source}" +
                      (data.Test != null ? $", {data.Test.Count} test images" : ""));
        foreach (string note in data.Notes) log.WriteLine($"note: {note}");
        using var run = PretrainRun.Execute(options, data, log, result.GetValue(Resume), evaluate: !result.GetValue(NoEval),
                                            startedUtc: MpiLaunch.StartedUtc(), processes: processes);
        return 0;
    }
}
