using System.Collections;
using static Conic.Runtime.KeptScalars;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Conic.Models;

/// <summary>
/// A backbone's weights from a file another tool wrote, to start a backbone from: a torchvision or timm ResNet, ViT or
/// ConvNeXt state dict (<c>torch.save(model.state_dict(), ...)</c>, <c>.pth</c>/<c>.pt</c>; a checkpoint holding it under
/// <c>state_dict</c> or <c>model</c> too) or safetensors (<c>.safetensors</c>; Conic's own exports included).
/// ResNet names are torchvision's, which timm's ResNets and Conic share (conv1, bn1, layer1.0.conv1, ...); ViT names
/// timm's (patch_embed.proj, blocks.0.attn.qkv, ...), ConvNeXt names timm's (stem.0, stages.0.blocks.0.conv_dw, ...);
/// torchvision's VisionTransformer and ConvNeXt are renamed to them. A common prefix (<c>module.</c>, <c>backbone.</c>,
/// <c>encoder.</c>) is found and dropped, the classifier (<c>fc.*</c>, <c>head.*</c>, <c>head.fc.*</c>) is left out.
/// The file gives the backbone's shape (<see cref="Backbone"/>); a 3-channel first convolution (or patch embedding) is summed over its
/// channels for grayscale images (and a 1-channel one spread over 3), as timm adapts <c>in_chans</c>.
/// </summary>
public sealed class InitialWeights : IDisposable
{
    /// <summary>The flag that names the file.</summary>
    public const string Flag = "--init";
    /// <summary>The flag's help line.</summary>
    public const string FlagHelp =
        "start the backbone from these weights instead of random ones: a torchvision or timm ResNet, ViT or ConvNeXt state dict (.pth, .pt) or .safetensors " +
        "(Conic's exports too); --arch, --width and --stem follow the file unless given";

    readonly Dictionary<string, Tensor> _tensors;

    /// <summary>The file read.</summary>
    public string Path { get; }
    /// <summary>The backbone the file holds: architecture, width, stem or patch size, and its input layer's channels.</summary>
    public BackboneOptions Backbone { get; }
    /// <summary>The prefix the backbone's names had in the file ("" for a plain torchvision state dict).</summary>
    public string Prefix { get; }

    InitialWeights(string path, Dictionary<string, Tensor> tensors, string prefix, BackboneOptions backbone) =>
        (Path, _tensors, Prefix, Backbone) = (path, tensors, prefix, backbone);

    /// <summary>The ResNet, ViT or ConvNeXt weights in <paramref name="path"/>; a one-line <see cref="ConicException"/> naming the file when it holds none.</summary>
    public static InitialWeights Read(string path)
    {
        var all = ReadTensors(path);
        var (prefix, family) = FindPrefix(path, all.Keys);
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in all)
        {
            string? own = name.StartsWith(prefix, StringComparison.Ordinal) ? family.Rename(name[prefix.Length..]) : null;
            if (own == null)
            {
                tensor.Dispose();
                continue;
            }
            // torchvision keeps a ConvNeXt block's layer scale as [C, 1, 1], timm as [C].
            using var single = tensor.to(ScalarType.Float32);
            tensors[own] = own.EndsWith(".gamma", StringComparison.Ordinal) ? single.flatten() : single.alias();
        }
        return new InitialWeights(path, tensors, prefix, family.Shape(path, tensors));
    }

    /// <summary>Copies the weights in <paramref name="path"/> into <paramref name="backbone"/> (see <see cref="LoadInto"/>).</summary>
    public static void Load(string path, Models.Backbone backbone)
    {
        using var weights = Read(path);
        weights.LoadInto(backbone);
    }

    /// <summary>
    /// How a library names one kind of backbone: the tensors whose presence under a prefix marks it (first: the input
    /// layer), each name as Conic's (timm's for ViTs and ConvNeXts), or null for the classifier, which is left out,
    /// and the backbone's shape read from the renamed tensors.
    /// </summary>
    sealed record NameFamily(string[] Anchors, Func<string, string?> Rename, Func<string, IReadOnlyDictionary<string, Tensor>, BackboneOptions> Shape);

    static readonly NameFamily[] Families =
    [
        // torchvision's and timm's ResNets, and Conic's.
        new(["conv1.weight", "bn1.weight", "layer1.0.conv1.weight"], name => name.StartsWith("fc.", StringComparison.Ordinal) ? null : name, ResNetShape),
        // timm's ViTs, and Conic's.
        new(["patch_embed.proj.weight", "blocks.0.attn.qkv.weight"], name => name.StartsWith("head.", StringComparison.Ordinal) ? null : name, VitShape),
        // torchvision's VisionTransformer, renamed to timm's.
        new(["conv_proj.weight", "encoder.layers.encoder_layer_0.self_attention.in_proj_weight"], TorchvisionVitName, VitShape),
        // timm's ConvNeXts, and Conic's: the head's norm is the backbone's last layer, its fc the classifier.
        new(["stem.0.weight", "stages.0.blocks.0.conv_dw.weight"], name => name.StartsWith("head.fc.", StringComparison.Ordinal) ? null : name, ConvNeXtShape),
        // torchvision's ConvNeXt, renamed to timm's.
        new(["features.0.0.weight", "features.1.0.block.0.weight"], TorchvisionConvNeXtName, ConvNeXtShape),
    ];

    /// <summary>
    /// torchvision's convnext names as timm's: features.0 is the stem, features.1/3/5/7 the stages' blocks (block.0
    /// depthwise, .2 norm, .3 and .5 the MLP, layer_scale), features.2/4/6 the downsamplings, classifier.0 the last norm.
    /// </summary>
    static string? TorchvisionConvNeXtName(string name)
    {
        if (name.StartsWith("classifier.0.", StringComparison.Ordinal)) return "head.norm." + name["classifier.0.".Length..];
        if (name.StartsWith("classifier.", StringComparison.Ordinal)) return null;
        var parts = name.Split('.');
        if (parts.Length < 4 || parts[0] != "features" || !int.TryParse(parts[1], out int feature)) return name;
        if (feature == 0) return $"stem.{string.Join('.', parts[2..])}";
        if (feature % 2 == 0) return $"stages.{feature / 2}.downsample.{string.Join('.', parts[2..])}";
        string inner = parts[3] == "layer_scale" ? "gamma" : (parts.Length == 6 && parts[3] == "block") switch
        {
            true when parts[4] == "0" => $"conv_dw.{parts[5]}",
            true when parts[4] == "2" => $"norm.{parts[5]}",
            true when parts[4] == "3" => $"mlp.fc1.{parts[5]}",
            true when parts[4] == "5" => $"mlp.fc2.{parts[5]}",
            _ => string.Join('.', parts[3..]),
        };
        return $"stages.{feature / 2}.blocks.{parts[2]}.{inner}";
    }

    static string? TorchvisionVitName(string name)
    {
        if (name.StartsWith("heads.", StringComparison.Ordinal)) return null;
        foreach (var (from, to) in new[] { ("class_token", "cls_token"), ("conv_proj.", "patch_embed.proj."), ("encoder.pos_embedding", "pos_embed"), ("encoder.ln.", "norm.") })
            if (name.StartsWith(from, StringComparison.Ordinal)) return to + name[from.Length..];
        const string layers = "encoder.layers.encoder_layer_";
        if (!name.StartsWith(layers, StringComparison.Ordinal)) return name;
        string rest = name[layers.Length..];
        int dot = rest.IndexOf('.');
        string inner = rest[(dot + 1)..] switch
        {
            "self_attention.in_proj_weight" => "attn.qkv.weight",
            "self_attention.in_proj_bias" => "attn.qkv.bias",
            var other => other.Replace("self_attention.out_proj.", "attn.proj.").Replace("ln_1.", "norm1.").Replace("ln_2.", "norm2.")
                              .Replace("mlp.0.", "mlp.fc1.").Replace("mlp.3.", "mlp.fc2."),
        };
        return $"blocks.{rest[..dot]}.{inner}";
    }

    /// <summary>The shape of the backbone in <paramref name="path"/> (<see cref="Backbone"/>) with the input's <paramref name="inputChannels"/>.</summary>
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

    /// <summary>The prefix in front of the library's names: the shortest one under which all of a family's anchors are.</summary>
    static (string Prefix, NameFamily Family) FindPrefix(string path, IEnumerable<string> names)
    {
        var set = names.ToHashSet();
        var found = Families.SelectMany(family => set.Where(n => n.EndsWith(family.Anchors[0], StringComparison.Ordinal))
                .Select(n => n[..^family.Anchors[0].Length])
                .Where(p => (p.Length == 0 || p.EndsWith('.')) && family.Anchors.All(a => set.Contains(p + a)))
                .Select(p => (Prefix: p, Family: family)))
            .OrderBy(f => f.Prefix.Length).ToList();
        if (found.Count == 0)
            throw new ConicException($"{path}: holds no ResNet, ViT or ConvNeXt (no conv1.weight with bn1 and layer1.0 beside it, nor patch_embed and " +
                                     "blocks.0, nor stem.0 and stages.0, as torchvision and timm name them)");
        if (found.Count > 1 && found[1].Prefix.Length == found[0].Prefix.Length)
            throw new ConicException($"{path}: holds several backbones ('{found[0].Prefix}', '{found[1].Prefix}'); save the one to start from on its own");
        return found[0];
    }

    static BackboneOptions VitShape(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var patches = tensors["patch_embed.proj.weight"].shape;
        int blocks = Enumerable.Range(0, 64).TakeWhile(b => tensors.ContainsKey($"blocks.{b}.attn.qkv.weight")).Count();
        var size = (patches[0], blocks) switch
        {
            (192, 12) => VitSize.Tiny,
            (384, 12) => VitSize.Small,
            _ => throw new ConicException($"{path}: holds a ViT of {patches[0]} dimensions and {blocks} blocks; Conic builds vit-tiny (192, 12) and vit-small (384, 12)"),
        };
        if (patches[2] is not (4 or 16))
            throw new ConicException($"{path}: holds a ViT with {patches[2]}-pixel patches; Conic's have 4 (--stem small) or 16 (--stem imagenet)");
        return new BackboneOptions { Vit = size, SmallImageStem = patches[2] == 4, InputChannels = (int)patches[1] };
    }

    static BackboneOptions ConvNeXtShape(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var stem = tensors["stem.0.weight"].shape;
        int[] blocks = Enumerable.Range(0, 4).Select(stage => Enumerable.Range(0, 64).TakeWhile(b => tensors.ContainsKey($"stages.{stage}.blocks.{b}.conv_dw.weight")).Count()).ToArray();
        if (stem[0] != 96 || blocks is not [3, 3, 9, 3])
            throw new ConicException($"{path}: holds a ConvNeXt of {stem[0]} channels and blocks [{string.Join(", ", blocks)}]; Conic builds convnext-tiny (96, [3, 3, 9, 3])");
        if (stem[2] is not (2 or 4))
            throw new ConicException($"{path}: holds a ConvNeXt with {stem[2]}-pixel stem patches; Conic's have 2 (--stem small) or 4 (--stem imagenet)");
        return new BackboneOptions { ConvNext = ConvNextSize.Tiny, SmallImageStem = stem[2] == 2, InputChannels = (int)stem[1] };
    }

    static BackboneOptions ResNetShape(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var conv1 = tensors["conv1.weight"].shape;
        bool bottleneck = tensors.ContainsKey("layer1.0.conv3.weight");
        int[] blocks = Enumerable.Range(1, 4).Select(stage => Enumerable.Range(0, 64).TakeWhile(b => tensors.ContainsKey($"layer{stage}.{b}.conv1.weight")).Count()).ToArray();
        var depth = (bottleneck, blocks) switch
        {
            (false, [2, 2, 2, 2]) => ResNetDepth.ResNet18,
            (true, [3, 4, 6, 3]) => ResNetDepth.ResNet50,
            _ => throw new ConicException($"{path}: holds a ResNet of {(bottleneck ? "bottleneck" : "basic")} blocks [{string.Join(", ", blocks)}]; " +
                                          "Conic builds resnet18 (basic [2, 2, 2, 2]) and resnet50 (bottleneck [3, 4, 6, 3])"),
        };
        return new BackboneOptions { Depth = depth, Width = (int)conv1[0], SmallImageStem = conv1[2] != 7, InputChannels = (int)conv1[1] };
    }

    /// <summary>
    /// Copies the weights into <paramref name="backbone"/>: every parameter and BatchNorm statistic of it must be in the
    /// file with its shape (the batch counters may be absent), and the file may hold nothing else but the classifier.
    /// </summary>
    public void LoadInto(Models.Backbone backbone)
    {
        var targets = backbone.state_dict();
        foreach (string name in _tensors.Keys)
            if (!targets.ContainsKey(name))
                throw new ConicException($"{Path}: unexpected key {Prefix}{name} (not in a {backbone.Options.Describe()})");
        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            if (!_tensors.TryGetValue(name, out var source))
            {
                if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
                throw new ConicException($"{Path}: missing key {Prefix}{name} (a {backbone.Options.Describe()} needs it)");
            }
            using var adapted = name is "conv1.weight" or "patch_embed.proj.weight" or "stem.0.weight" ? AdaptInputChannels(source, target.shape[1]) : source.alias();
            if (!adapted.shape.SequenceEqual(target.shape))
                throw new ConicException($"{Path}: {Prefix}{name} has shape [{string.Join(", ", source.shape)}], the backbone's is " +
                                         $"[{string.Join(", ", target.shape)}]: the file holds a {Backbone.Describe()}, the backbone is a {backbone.Options.Describe()}");
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

    /// <summary>Frees the tensors read.</summary>
    public void Dispose()
    {
        foreach (var tensor in _tensors.Values) tensor.Dispose();
    }
}
