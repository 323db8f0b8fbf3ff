using System.Collections;
using static Conic.Runtime.KeptScalars;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conic.Models;

/// <summary>
/// A ResNet's weights from a file another tool wrote, to start a backbone from: a torchvision or timm ResNet state
/// dict (<c>torch.save(model.state_dict(), ...)</c>, <c>.pth</c>/<c>.pt</c>; a checkpoint holding it under
/// <c>state_dict</c> or <c>model</c> too) or safetensors (<c>.safetensors</c>; Conic's own exports included).
/// Names are torchvision's, which timm's ResNets and Conic share (conv1, bn1, layer1.0.conv1, ...); a common prefix
/// (<c>module.</c>, <c>backbone.</c>, <c>encoder.</c>) is found and dropped, the classifier (<c>fc.*</c>) is left out.
/// The file gives the backbone's shape (<see cref="Backbone"/>); a 3-channel first convolution is summed over its
/// channels for grayscale images (and a 1-channel one spread over 3), as timm adapts <c>in_chans</c>.
/// </summary>
public sealed class InitialWeights : IDisposable
{
    /// <summary>The flag that names the file.</summary>
    public const string Flag = "--init";
    /// <summary>The flag's help line.</summary>
    public const string FlagHelp =
        "start the backbone from these weights instead of random ones: a torchvision or timm ResNet state dict (.pth, .pt) or .safetensors " +
        "(Conic's exports too); --arch, --width and --stem follow the file unless given";

    readonly Dictionary<string, Tensor> _tensors;

    /// <summary>The file read.</summary>
    public string Path { get; }
    /// <summary>The ResNet the file holds: depth, width, stem and its first convolution's input channels.</summary>
    public BackboneOptions Backbone { get; }
    /// <summary>The prefix the backbone's names had in the file ("" for a plain torchvision state dict).</summary>
    public string Prefix { get; }

    InitialWeights(string path, Dictionary<string, Tensor> tensors, string prefix, BackboneOptions backbone) =>
        (Path, _tensors, Prefix, Backbone) = (path, tensors, prefix, backbone);

    /// <summary>The ResNet weights in <paramref name="path"/>; a one-line <see cref="ConicException"/> naming the file when it holds none.</summary>
    public static InitialWeights Read(string path)
    {
        var all = ReadTensors(path);
        string prefix = FindPrefix(path, all.Keys);
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in all)
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal) && !name.StartsWith(prefix + "fc.", StringComparison.Ordinal))
                tensors[name[prefix.Length..]] = tensor.to(ScalarType.Float32);
            else
                tensor.Dispose();
        }
        var weights = new InitialWeights(path, tensors, prefix, default!);
        return new InitialWeights(path, tensors, prefix, weights.InferShape());
    }

    /// <summary>The shape of the ResNet in <paramref name="path"/> (<see cref="Backbone"/>) with the input's <paramref name="inputChannels"/>.</summary>
    public static BackboneOptions ShapeOf(string path, int inputChannels)
    {
        using var weights = Read(path);
        return weights.Backbone with { InputChannels = inputChannels };
    }

    static Dictionary<string, Tensor> ReadTensors(string path)
    {
        if (!File.Exists(path)) throw new ConicException($"{path}: no such file");
        try
        {
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return Safetensors.LoadStateDict(path);
            return StateDictOf(PyTorchUnpickler.UnpickleStateDict(path))
                   ?? throw new ConicException($"{path}: holds no state dict (a dict of tensors, or one under 'state_dict' or 'model')");
        }
        catch (Exception e) when (e is NotImplementedException or InvalidDataException or InvalidCastException or System.Text.Json.JsonException
                                      or EndOfStreamException or Razorvine.Pickle.PickleException or ArgumentException)
        {
            // PyBridge reads PyTorch's zip format with plain tensors; older files and whole pickled models fail inside it.
            throw new ConicException($"{path}: not a readable state dict ({e.Message.Split('\n')[0].TrimEnd('.')}); " +
                                     "save the weights with torch.save(model.state_dict(), FILE) or as .safetensors");
        }
    }

    /// <summary>The tensors of an unpickled object: the dict itself, or the dict it keeps under a usual checkpoint key.</summary>
    static Dictionary<string, Tensor>? StateDictOf(Hashtable unpickled)
    {
        var tensors = unpickled.Keys.OfType<string>().Where(k => unpickled[k] is Tensor).ToDictionary(k => k, k => (Tensor)unpickled[k]!);
        if (tensors.Count > 0) return tensors;
        foreach (string key in new[] { "state_dict", "model", "model_state_dict", "teacher", "student" })
            if (unpickled[key] is Hashtable inner && StateDictOf(inner) is { } found) return found;
        return null;
    }

    /// <summary>The prefix in front of torchvision's names: the shortest one under which conv1, bn1 and layer1's first block all are.</summary>
    static string FindPrefix(string path, IEnumerable<string> names)
    {
        var set = names.ToHashSet();
        var prefixes = set.Where(n => n.EndsWith("conv1.weight", StringComparison.Ordinal))
            .Select(n => n[..^"conv1.weight".Length])
            .Where(p => (p.Length == 0 || p.EndsWith('.')) && set.Contains(p + "bn1.weight") && set.Contains(p + "layer1.0.conv1.weight"))
            .OrderBy(p => p.Length).ToList();
        if (prefixes.Count == 0)
            throw new ConicException($"{path}: holds no ResNet (no conv1.weight with bn1 and layer1.0 beside it, as torchvision and timm name them)");
        if (prefixes.Count > 1 && prefixes[1].Length == prefixes[0].Length)
            throw new ConicException($"{path}: holds several ResNets ('{prefixes[0]}', '{prefixes[1]}'); save the one to start from on its own");
        return prefixes[0];
    }

    BackboneOptions InferShape()
    {
        var conv1 = _tensors["conv1.weight"].shape;
        bool bottleneck = _tensors.ContainsKey("layer1.0.conv3.weight");
        int[] blocks = Enumerable.Range(1, 4).Select(stage => Enumerable.Range(0, 64).TakeWhile(b => _tensors.ContainsKey($"layer{stage}.{b}.conv1.weight")).Count()).ToArray();
        var depth = (bottleneck, blocks) switch
        {
            (false, [2, 2, 2, 2]) => ResNetDepth.ResNet18,
            (true, [3, 4, 6, 3]) => ResNetDepth.ResNet50,
            _ => throw new ConicException($"{Path}: holds a ResNet of {(bottleneck ? "bottleneck" : "basic")} blocks [{string.Join(", ", blocks)}]; " +
                                          "Conic builds resnet18 (basic [2, 2, 2, 2]) and resnet50 (bottleneck [3, 4, 6, 3])"),
        };
        return new BackboneOptions { Depth = depth, Width = (int)conv1[0], SmallImageStem = conv1[2] != 7, InputChannels = (int)conv1[1] };
    }

    /// <summary>
    /// Copies the weights into <paramref name="backbone"/>: every parameter and BatchNorm statistic of it must be in the
    /// file with its shape (the batch counters may be absent), and the file may hold nothing else but the classifier.
    /// </summary>
    public void LoadInto(ResNet backbone)
    {
        var targets = backbone.state_dict();
        foreach (string name in _tensors.Keys)
            if (!targets.ContainsKey(name))
                throw new ConicException($"{Path}: unexpected key {Prefix}{name} (not in a {Describe(backbone.Options)})");
        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            if (!_tensors.TryGetValue(name, out var source))
            {
                if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
                throw new ConicException($"{Path}: missing key {Prefix}{name} (a {Describe(backbone.Options)} needs it)");
            }
            using var adapted = name == "conv1.weight" ? AdaptInputChannels(source, target.shape[1]) : source.alias();
            if (!adapted.shape.SequenceEqual(target.shape))
                throw new ConicException($"{Path}: {Prefix}{name} has shape [{string.Join(", ", source.shape)}], the backbone's is " +
                                         $"[{string.Join(", ", target.shape)}]: the file holds a {Describe(Backbone)}, the backbone is a {Describe(backbone.Options)}");
            target.copy_(adapted);
        }
    }

    /// <summary>The first convolution for <paramref name="channels"/> input channels: RGB filters summed for grayscale, a grayscale filter spread over RGB.</summary>
    static Tensor AdaptInputChannels(Tensor weight, long channels) => (weight.shape[1], channels) switch
    {
        (3, 1) => weight.sum(1, keepdim: true),
        (1, 3) => weight.repeat(1, 3, 1, 1).div_(Kept(3.0)),
        _ => weight.alias(),
    };

    static string Describe(BackboneOptions b) =>
        $"{b.Depth.ToString().ToLowerInvariant()} of width {b.Width} with the {(b.SmallImageStem ? "small" : "imagenet")} stem";

    /// <summary>Frees the tensors read.</summary>
    public void Dispose()
    {
        foreach (var tensor in _tensors.Values) tensor.Dispose();
    }
}
