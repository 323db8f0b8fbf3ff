using System.CommandLine;
using Conic.Configuration;
using Conic.Models;

namespace Conic.Cli;

/// <summary>
/// Settings (declared next to the records they set) as System.CommandLine options of a command, how the given ones
/// change the record, and the command's <c>--help</c> grouped as the record groups its settings, with the values the
/// command line gives. Pretraining and fine-tuning commands are built on it alike.
/// </summary>
/// <typeparam name="T">The settings record: <c>PretrainOptions</c>, <c>FinetuneOptions</c>.</typeparam>
sealed class SettingOptions<T> where T : new()
{
    readonly Dictionary<string, Option<string[]>> _options = new();
    readonly Func<T, IReadOnlyList<(string Title, Settings<T> Settings)>> _groups;
    readonly Func<T, string, string, T> _set;

    /// <param name="settings">Every setting the command takes, whatever the record's value (all methods' settings, say).</param>
    /// <param name="groups">The settings of a record's value, grouped as its help shows them.</param>
    /// <param name="set">Sets one flag (default: the setting of that flag among the groups), for records with their own errors.</param>
    public SettingOptions(Command command, IEnumerable<Setting<T>> settings, Func<T, IReadOnlyList<(string Title, Settings<T> Settings)>> groups,
                          Func<T, string, string, T>? set = null)
    {
        _groups = groups;
        _set = set ?? ((owner, flag, text) => groups(owner).SelectMany(g => g.Settings).First(s => s.Flag == flag).Apply(owner, text));
        foreach (var setting in settings)
        {
            if (_options.ContainsKey(setting.Flag)) continue;  // settings shared by two methods (MoCo v1 and v2)
            // Given twice, the last value counts (as scripts that append a flag expect); a switch may stand alone.
            var option = new Option<string[]>(setting.Flag)
            {
                HelpName = setting.IsSwitch ? null : setting.ValueName, Description = setting.Help,
                Arity = setting.IsSwitch ? ArgumentArity.ZeroOrMore : ArgumentArity.OneOrMore,
            };
            _options[setting.Flag] = option;
            command.Add(option);
        }
    }

    /// <summary>The value given for <paramref name="flag"/> ("" for a bare switch), or null.</summary>
    public string? Given(ParseResult result, string flag) =>
        _options.TryGetValue(flag, out var option) && result.GetResult(option) != null ? result.GetValue(option)!.LastOrDefault("") : null;

    /// <summary>
    /// With <c>--init FILE</c> given and none of <c>--arch</c>, <c>--width</c>, <c>--stem</c>: the backbone's shape the file
    /// holds (input channels kept), so that starting from torchvision's resnet50 needs no other flag.
    /// </summary>
    public BackboneOptions BackboneOfInit(ParseResult result, BackboneOptions backbone) =>
        Given(result, InitialWeights.Flag) is string path && !BackboneOptions.Settings.Any(s => Given(result, s.Flag) != null)
            ? InitialWeights.ShapeOf(Path.GetFullPath(path), backbone.InputChannels)
            : backbone;

    /// <summary>The given settings applied to <paramref name="start"/>: a method or preset first, then the settings that refine it.</summary>
    public T Apply(ParseResult result, T start)
    {
        var given = _options.Keys.Select(flag => (Flag: flag, Value: Given(result, flag))).Where(g => g.Value != null).ToList();
        var first = _groups(start).SelectMany(g => g.Settings).Where(s => s.AppliedFirst).Select(s => s.Flag).ToHashSet();
        var options = start;
        foreach (var (flag, value) in given.OrderBy(g => first.Contains(g.Flag) ? 0 : 1)) options = _set(options, flag, value!);
        return options;
    }

    /// <summary>
    /// The command's help: <paramref name="summary"/>, the settings by group with the values <paramref name="current"/>
    /// gives (the defaults when the command line does not parse), then the command's own options.
    /// </summary>
    /// <param name="titled">A group's title as shown, given the current value (the method group names the method).</param>
    /// <param name="closing">Sections after the settings, before the command's own options.</param>
    public void UseGroupedHelp(Command command, string summary, Func<ParseResult, T> current, Option[] commandOptions,
                               Func<T, string, string>? titled = null, Func<T, IEnumerable<CommandHelp.Section>>? closing = null) =>
        CommandHelp.Use(command, summary, result =>
        {
            T options;
            try
            {
                options = current(result);
            }
            catch (ConicException)
            {
                options = new T();
            }
            var sections = _groups(options).Select(group => new CommandHelp.Section(
                titled?.Invoke(options, group.Title) ?? group.Title,
                group.Settings.Where(s => _options.ContainsKey(s.Flag)).Select(s => Row(s, options)).ToList()));
            return [.. sections, .. closing?.Invoke(options) ?? [], CommandHelp.OptionsSection(command.Name, commandOptions)];
        });

    static (string, string) Row(Setting<T> setting, T options)
    {
        string value = setting.Current(options);
        return (setting.IsSwitch ? setting.Flag : $"{setting.Flag} {setting.ValueName}", setting.Help + (value.Length > 0 ? $" (default: {value})" : ""));
    }
}
