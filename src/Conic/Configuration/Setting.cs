using System.Globalization;

namespace Conic.Configuration;

/// <summary>
/// One option of a settings record <typeparamref name="T"/>: its flag, help line, current value as text, how text
/// changes it and which values are allowed. The CLI, <c>--help</c>, config-file checks and comparison entries all work
/// from these, so a flag is written once, next to the setting it sets.
/// </summary>
public sealed class Setting<T>
{
    readonly Func<T, object?> _current;
    readonly Func<T, object?> _value;
    readonly Func<T, string, T> _apply;
    readonly Func<T, string?> _problem;

    /// <param name="value">The value for a file, null when unset (default: <paramref name="current"/>).</param>
    internal Setting(string flag, string valueName, string help, Func<T, object?> current, Func<T, string, T> apply, Func<T, string?> problem,
                     bool appliedFirst = false, bool isSwitch = false, Func<T, object?>? value = null)
    {
        _value = value ?? current;
        IsSwitch = isSwitch;
        Flag = flag;
        ValueName = valueName;
        Help = help;
        _current = current;
        _apply = apply;
        _problem = problem;
        AppliedFirst = appliedFirst;
    }

    /// <summary>The command-line flag, with its dashes (<c>--lambda</c>).</summary>
    public string Flag { get; }
    /// <summary>The placeholder of the value in help (<c>RATE</c>, <c>N</c>); empty for a switch.</summary>
    public string ValueName { get; }
    /// <summary>The help line.</summary>
    public string Help { get; }
    /// <summary>Applied before other settings wherever it stands on the command line: a choice (method, preset) that others refine.</summary>
    public bool AppliedFirst { get; }
    /// <summary>An on/off setting that a bare flag turns on (<c>--freeze-backbone</c>); <c>on</c> or <c>off</c> may follow it.</summary>
    public bool IsSwitch { get; }

    /// <summary>The owner's value as the command line writes it (or the text that stands for an unset value).</summary>
    public string Current(T owner) => SettingText.Format(_current(owner));

    /// <summary>
    /// The owner's value as a file records it: a number, a bool or text (a choice's name), or null when it is unset (left
    /// to a default chosen elsewhere: the method's, the images').
    /// </summary>
    public object? Value(T owner) => _value(owner);

    /// <summary>The owner with this setting parsed from <paramref name="text"/>; a value that does not parse is a one-line error naming the flag.</summary>
    public T Apply(T owner, string text) => _apply(owner, text);

    /// <summary>Why the owner's value of this setting is not allowed (one line starting with the flag), or null.</summary>
    public string? Problem(T owner) => _problem(owner);

    /// <summary>This setting of a record held inside <typeparamref name="TOuter"/>.</summary>
    public Setting<TOuter> Within<TOuter>(Func<TOuter, T> get, Func<TOuter, T, TOuter> set) =>
        new(Flag, ValueName, Help, outer => _current(get(outer)), (outer, text) => set(outer, _apply(get(outer), text)),
            outer => _problem(get(outer)), AppliedFirst, IsSwitch, outer => _value(get(outer)));
}

/// <summary>
/// Allowed values of a number: an interval, open or closed at each end, with why where the bound is not obvious.
/// </summary>
public sealed record ValueRange(double Min, double Max, bool MinOpen = false, bool MaxOpen = false, string? Why = null)
{
    /// <summary>Any finite number.</summary>
    public static readonly ValueRange Any = new(double.NegativeInfinity, double.PositiveInfinity);
    /// <summary>Zero or more.</summary>
    public static readonly ValueRange NonNegative = new(0, double.PositiveInfinity);
    /// <summary>More than zero.</summary>
    public static readonly ValueRange Positive = new(0, double.PositiveInfinity, MinOpen: true);
    /// <summary>From 0 to 1, both included.</summary>
    public static readonly ValueRange UnitInterval = new(0, 1);
    /// <summary>Below 1: SGD momentum, EMA rates.</summary>
    public static readonly ValueRange Momentum = new(0, 1, MaxOpen: true);
    /// <summary>Logits are similarities divided by a temperature, so below 0.001 they leave float32's useful range.</summary>
    public static readonly ValueRange Temperature = new(1e-3, 100, Why: "typical 0.05 to 0.5; below 0.001 the logits leave float32's range");

    /// <summary><paramref name="min"/> or more.</summary>
    public static ValueRange AtLeast(double min) => new(min, double.PositiveInfinity);

    /// <summary>Whether <paramref name="value"/> is allowed (NaN never is).</summary>
    public bool Contains(double value) =>
        (MinOpen ? value > Min : value >= Min) && (MaxOpen ? value < Max : value <= Max) && !double.IsNaN(value);

    /// <summary>The range in words for an error message: ">= 1", "in [0, 1)", with why where given.</summary>
    public string Describe()
    {
        string text = (double.IsNegativeInfinity(Min), double.IsPositiveInfinity(Max)) switch
        {
            (true, true) => "finite",
            (false, true) => MinOpen ? $"> {F(Min)}" : $">= {F(Min)}",
            (true, false) => MaxOpen ? $"< {F(Max)}" : $"<= {F(Max)}",
            _ => $"in {(MinOpen ? "(" : "[")}{F(Min)}, {F(Max)}{(MaxOpen ? ")" : "]")}",
        };
        return Why == null ? text : $"{text}; {Why}";
    }

    static string F(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}

/// <summary>The settings of one record, declared in a row: <c>new Settings&lt;ConicOptions&gt;().Number(...).Number(...)</c>.</summary>
public sealed class Settings<T> : List<Setting<T>>
{
    readonly List<Func<T, string?>> _rules = new();

    /// <summary>A number setting that must lie in <paramref name="range"/>.</summary>
    public Settings<T> Number(string flag, string valueName, string help, Func<T, double> get, Func<T, double, T> set, ValueRange range) =>
        Add(flag, valueName, help, o => get(o), (o, text) => set(o, SettingText.Double(flag, text)),
            o => range.Contains(get(o)) ? null : $"{flag}: {SettingText.Format(get(o))} must be {range.Describe()}");

    /// <summary>A number that may be left to a default chosen elsewhere (shown as <paramref name="unsetText"/>).</summary>
    public Settings<T> OptionalNumber(string flag, string valueName, string help, Func<T, double?> get, Func<T, double?, T> set, ValueRange range,
                                      Func<T, object> unsetText) =>
        Add(flag, valueName, help, o => get(o) ?? unsetText(o), (o, text) => set(o, SettingText.Double(flag, text)),
            o => get(o) is not double value || range.Contains(value) ? null : $"{flag}: {SettingText.Format(value)} must be {range.Describe()}",
            value: o => get(o));

    /// <summary>An integer setting that must lie in <paramref name="range"/>.</summary>
    public Settings<T> Integer(string flag, string valueName, string help, Func<T, int> get, Func<T, int, T> set, ValueRange range) =>
        Add(flag, valueName, help, o => get(o), (o, text) => set(o, SettingText.Int(flag, text)),
            o => range.Contains(get(o)) ? null : $"{flag}: {get(o)} must be {range.Describe()}");

    /// <summary>An on/off setting: the bare flag, or "on", turns it on; "off" turns it off (see <see cref="Setting{T}.IsSwitch"/>).</summary>
    public Settings<T> Switch(string flag, string help, Func<T, bool> get, Func<T, bool, T> set)
    {
        Add(new Setting<T>(flag, "", help, o => get(o), (o, text) => set(o, text.Length == 0 || SettingText.Choice(flag, text, ("on", true), ("off", false))),
                           _ => null, isSwitch: true));
        return this;
    }

    /// <summary>A setting that takes one of the named <paramref name="choices"/>.</summary>
    public Settings<T> Choice<TValue>(string flag, string valueName, string help, Func<T, TValue> get, Func<T, TValue, T> set,
                                      params (string Name, TValue Value)[] choices) =>
        Add(flag, valueName, help, o => NameOf(get(o), choices), (o, text) => set(o, SettingText.Choice(flag, text, choices)), _ => null);

    /// <param name="set">May throw a <see cref="ConicException"/> saying what is wrong; the flag is put before it.</param>
    /// <param name="problem">Why a value is not allowed, without the flag (put before it), or null.</param>
    public Settings<T> Text(string flag, string valueName, string help, Func<T, string?> get, Func<T, string, T> set,
                            Func<T, string?>? problem = null, bool appliedFirst = false, string? unsetText = null) =>
        Add(flag, valueName, help, o => get(o) ?? unsetText,
            (o, text) =>
            {
                try
                {
                    return set(o, text);
                }
                catch (ConicException e) when (!e.Message.StartsWith(flag, StringComparison.Ordinal))
                {
                    throw new ConicException($"{flag}: {e.Message}");
                }
            },
            o => problem?.Invoke(o) is string reason ? $"{flag}: {reason}" : null, appliedFirst, value: o => get(o));

    /// <summary>A check across settings (a minimum not above its maximum); the message says which.</summary>
    public Settings<T> Rule(Func<T, string?> problem)
    {
        _rules.Add(problem);
        return this;
    }

    /// <summary>Every problem of <paramref name="owner"/>'s values, each one line naming its flag.</summary>
    public IEnumerable<string> Problems(T owner) =>
        this.Select(s => s.Problem(owner)).Concat(_rules.Select(rule => rule(owner))).OfType<string>();

    /// <summary>Throws a one-line <see cref="ConicException"/> for the first problem of <paramref name="owner"/>'s values.</summary>
    public void ThrowIfInvalid(T owner)
    {
        foreach (string problem in Problems(owner)) throw new ConicException(problem);
    }

    /// <summary>These settings (and rules) of a record held inside <typeparamref name="TOuter"/>.</summary>
    public Settings<TOuter> Within<TOuter>(Func<TOuter, T> get, Func<TOuter, T, TOuter> set)
    {
        var outer = new Settings<TOuter>();
        outer.AddRange(this.Select(s => s.Within(get, set)));
        foreach (var rule in _rules) outer.Rule(o => rule(get(o)));
        return outer;
    }

    Settings<T> Add(string flag, string valueName, string help, Func<T, object?> current, Func<T, string, T> apply, Func<T, string?> problem,
                    bool appliedFirst = false, Func<T, object?>? value = null)
    {
        Add(new Setting<T>(flag, valueName, help, current, apply, problem, appliedFirst, value: value));
        return this;
    }

    static string NameOf<TValue>(TValue value, (string Name, TValue Value)[] choices) =>
        choices.FirstOrDefault(c => EqualityComparer<TValue>.Default.Equals(c.Value, value)).Name ?? SettingText.Format(value);
}

/// <summary>Settings' values as text: invariant culture, enums in lower case; parse failures name the flag.</summary>
public static class SettingText
{
    /// <summary>A value as the command line writes it: numbers in invariant culture, on/off, enums in lower case.</summary>
    public static string Format(object? value) => value switch
    {
        null => "",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        bool b => b ? "on" : "off",
        Enum e => e.ToString().ToLowerInvariant(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary><paramref name="text"/> as an integer, or a one-line error naming <paramref name="flag"/>.</summary>
    public static int Int(string flag, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new ConicException($"{flag}: '{text}' is not an integer");

    /// <summary><paramref name="text"/> as a finite number, or a one-line error naming <paramref name="flag"/>.</summary>
    public static double Double(string flag, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value)
            ? value
            : throw new ConicException($"{flag}: '{text}' is not a number");

    /// <summary>A duration in minutes from "90s", "20m", "1.5h", "1h30m" or a plain number of minutes; "none" or 0 is no duration.</summary>
    public static double Minutes(string text)
    {
        string trimmed = text.Trim().ToLowerInvariant();
        if (trimmed == "none") return 0;
        if (double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out double plain) && double.IsFinite(plain) && plain >= 0) return Checked(text, plain);
        var match = DurationPattern.Match(trimmed);
        if (trimmed.Length == 0 || !match.Success)
            throw new ConicException($"'{text}' is not a duration (e.g. 45m, 1h30m, 90s)");
        double Part(int group) => match.Groups[group].Success ? double.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture) : 0;
        return Checked(text, Part(1) * 60 + Part(2) + Part(3) / 60);
    }

    const double MinutesInAYear = 365 * 24 * 60;

    /// <summary>A duration of no time, or of more than a year, is a slip (a missing unit, a digit too many), not a plan.</summary>
    static double Checked(string text, double minutes) =>
        minutes <= 0 ? throw new ConicException($"'{text}' is no time; give a duration such as 20m, or none")
        : minutes > MinutesInAYear ? throw new ConicException($"'{text}' is more than a year; give a duration such as 20m, 1h30m or 90s")
        : minutes;

    static readonly System.Text.RegularExpressions.Regex DurationPattern =
        new(@"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?$");

    /// <summary>Minutes as <see cref="Minutes"/> reads them back: "20m", "1h30m", "45s".</summary>
    public static string Duration(double minutes)
    {
        if (minutes < 1) return $"{Format(Math.Round(minutes * 60, 3))}s";
        int hours = (int)(minutes / 60);
        double rest = Math.Round(minutes - hours * 60, 4);
        return hours == 0 ? $"{Format(rest)}m" : rest == 0 ? $"{hours}h" : $"{hours}h{Format(rest)}m";
    }

    /// <summary>The choice named <paramref name="text"/> (case-insensitive), or a one-line error listing the names.</summary>
    public static TValue Choice<TValue>(string flag, string text, params (string Name, TValue Value)[] choices) =>
        choices.FirstOrDefault(c => c.Name.Equals(text, StringComparison.OrdinalIgnoreCase)) is { Name: not null } hit
            ? hit.Value
            : throw new ConicException($"{flag}: '{text}' is not one of {string.Join(", ", choices.Select(c => c.Name))}");
}
