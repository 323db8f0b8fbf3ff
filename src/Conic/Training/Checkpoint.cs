using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>
/// The header of a checkpoint: where training stands, the options that built the run, and what is needed to
/// rebuild the model without the dataset (instance count, input normalisation, the training images' size; 0 in
/// checkpoints written before the size was recorded).
/// </summary>
/// <param name="TrainingSeconds">Wall-clock seconds of training so far, across resumes (0 in checkpoints before 2026-12-01).</param>
/// <param name="TrainingBudgetSeconds">A time-budget run's planned training seconds, fixed at its start so that a resumed run
/// follows the same schedule; 0 for runs planned in epochs.</param>
public sealed record CheckpointHeader(int CompletedEpochs, long Step, int InstanceCount, float[] ChannelMean, float[] ChannelStd,
                                      PretrainOptions Options, int ImageHeight = 0, int ImageWidth = 0, double TrainingSeconds = 0,
                                      double TrainingBudgetSeconds = 0);

/// <summary>
/// One file holding a header (a JSON record: <see cref="CheckpointHeader"/> for pretraining, another type for other
/// runs) and named float32/int64 tensors (model state and optimiser buffers). Written to a
/// temporary file, flushed to disk, then renamed over the old one, so a run killed at any moment leaves either the
/// previous or the new checkpoint, never a torn one. The header and every tensor (name, type, shape and data) carry a
/// CRC-32C that is verified on load, so flipped bytes are an error rather than wrong weights.
/// </summary>
public static class Checkpoint
{
    const string Magic = "CONIC-CHECKPOINT";
    /// <summary>Format 2 added the checksums; format 1 files (no checksums) are still read.</summary>
    const int FormatVersion = 2;
    const int MaxRank = 8;

    /// <summary>Writes <paramref name="header"/> and <paramref name="tensors"/> to <paramref name="path"/> atomically, with checksums.</summary>
    public static void Save<THeader>(string path, THeader header, IEnumerable<(string Name, Tensor Value)> tensors)
    {
        Runtime.AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(FormatVersion);
            string json = JsonSerializer.Serialize(header, RunJson.Options);
            writer.Write(json);
            writer.Write(Runtime.Crc32C.Compute(Encoding.UTF8.GetBytes(json)));
            var list = tensors.ToList();
            writer.Write(list.Count);
            foreach (var (name, value) in list) WriteTensor(writer, name, value);
        });
    }

    /// <summary>A pretraining checkpoint's header, without reading its tensors.</summary>
    public static CheckpointHeader ReadHeader(string path) => ReadHeader<CheckpointHeader>(path);

    /// <summary>The header of the checkpoint at <paramref name="path"/>, without reading its tensors; a damaged file is a one-line error naming it.</summary>
    public static THeader ReadHeader<THeader>(string path)
    {
        using var reader = Open(path, out int version);
        return ReadHeader<THeader>(reader, path, version);
    }

    /// <summary>
    /// Reads the header and copies every stored tensor into the target of the same name (shapes must match).
    /// Stored tensors for which <paramref name="skip"/> is true are read past (e.g. optimiser state when only evaluating).
    /// </summary>
    public static CheckpointHeader Load(string path, IReadOnlyDictionary<string, Tensor> targets, Func<string, bool>? skip = null) =>
        Load<CheckpointHeader>(path, targets, skip);

    /// <summary>Reads the header and copies every stored tensor into the target of the same name (shapes must match); stored tensors for which <paramref name="skip"/> is true are read past.</summary>
    public static THeader Load<THeader>(string path, IReadOnlyDictionary<string, Tensor> targets, Func<string, bool>? skip = null)
    {
        using var reader = Open(path, out int version);
        var header = ReadHeader<THeader>(reader, path, version);
        int count = ReadInt32(reader, path);
        var seen = new HashSet<string>();
        using var noGrad = no_grad();
        for (int i = 0; i < count; i++)
        {
            using var value = ReadTensor(reader, path, version, out string name);
            if (skip?.Invoke(name) == true) continue;
            if (!targets.TryGetValue(name, out var target))
                throw new ConicException($"{path}: tensor '{name}' does not belong to this model");
            if (!target.shape.SequenceEqual(value.shape))
                throw new ConicException($"{path}: tensor '{name}' has shape [{string.Join(", ", value.shape)}], the model expects [{string.Join(", ", target.shape)}]");
            target.copy_(value);
            seen.Add(name);
        }
        var missing = targets.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0) throw new ConicException($"{path}: checkpoint lacks '{missing[0]}' ({missing.Count} tensors missing)");
        return header;
    }

    static BinaryReader Open(string path, out int version)
    {
        if (!File.Exists(path)) throw new ConicException($"{path}: no checkpoint here");
        var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        try
        {
            if (reader.BaseStream.Length < Magic.Length + 1 || reader.ReadString() != Magic) throw new ConicException($"{path}: not a Conic checkpoint");
            version = reader.ReadInt32();
            if (version is < 1 or > FormatVersion) throw new ConicException($"{path}: checkpoint format {version}, this Conic reads 1 to {FormatVersion}");
            return reader;
        }
        catch (EndOfStreamException)
        {
            reader.Dispose();
            throw new ConicException($"{path}: truncated checkpoint");
        }
        catch (Exception)
        {
            reader.Dispose();
            throw;
        }
    }

    static THeader ReadHeader<THeader>(BinaryReader reader, string path, int version)
    {
        try
        {
            string json = reader.ReadString();
            if (version >= 2 && reader.ReadUInt32() != Runtime.Crc32C.Compute(Encoding.UTF8.GetBytes(json)))
                throw new ConicException($"{path}: damaged checkpoint: the header fails its CRC-32C check");
            return JsonSerializer.Deserialize<THeader>(json, RunJson.Options)
                   ?? throw new ConicException($"{path}: empty checkpoint header");
        }
        catch (EndOfStreamException)
        {
            throw new ConicException($"{path}: truncated checkpoint (in its header)");
        }
        catch (Exception e) when (e is JsonException or IOException or FormatException or NotSupportedException)
        {
            throw new ConicException($"{path}: unreadable checkpoint header ({e.Message.Split('\n')[0]})");
        }
    }

    static int ReadInt32(BinaryReader reader, string path)
    {
        try
        {
            return reader.ReadInt32();
        }
        catch (EndOfStreamException)
        {
            throw new ConicException($"{path}: truncated checkpoint");
        }
    }

    /// <summary>A tensor's name, type and shape as written before its data (and covered by its checksum).</summary>
    static byte[] TensorMetadata(string name, ScalarType dtype, long[] shape)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(name);
            writer.Write((int)dtype);
            writer.Write(shape.Length);
            foreach (long d in shape) writer.Write(d);
        }
        return buffer.ToArray();
    }

    static void WriteTensor(BinaryWriter writer, string name, Tensor value)
    {
        using var cpuValue = value.detach().cpu().contiguous();
        byte[] data = cpuValue.dtype switch
        {
            ScalarType.Float32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpuValue.data<float>().ToArray().AsSpan()).ToArray(),
            ScalarType.Int64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpuValue.data<long>().ToArray().AsSpan()).ToArray(),
            _ => throw new NotSupportedException($"checkpoint tensor '{name}' has dtype {cpuValue.dtype}"),
        };
        byte[] metadata = TensorMetadata(name, cpuValue.dtype, cpuValue.shape);
        writer.Write(metadata);
        writer.Write(data);
        writer.Write(Runtime.Crc32C.Finish(Runtime.Crc32C.Append(Runtime.Crc32C.Append(Runtime.Crc32C.Start, metadata), data)));
    }

    static Tensor ReadTensor(BinaryReader reader, string path, int version, out string name)
    {
        name = "?";
        try
        {
            name = reader.ReadString();
            var dtype = (ScalarType)reader.ReadInt32();
            int rank = reader.ReadInt32();
            int elementSize = dtype switch
            {
                ScalarType.Float32 => 4,
                ScalarType.Int64 => 8,
                _ => throw new ConicException($"{path}: damaged checkpoint: tensor '{name}' has unsupported dtype {(int)dtype}"),
            };
            if (rank is < 0 or > MaxRank) throw new ConicException($"{path}: damaged checkpoint: tensor '{name}' has rank {rank}");
            var shape = new long[rank];
            for (int d = 0; d < rank; d++) shape[d] = reader.ReadInt64();
            long remaining = reader.BaseStream.Length - reader.BaseStream.Position;
            long elements = 1;
            foreach (long d in shape)
            {
                if (d < 0 || (d > 0 && elements > remaining / elementSize / d))
                    throw new ConicException($"{path}: damaged checkpoint: tensor '{name}' has shape [{string.Join(", ", shape)}], larger than the file");
                elements *= d;
            }
            var data = new byte[elements * elementSize];
            reader.BaseStream.ReadExactly(data);
            if (version >= 2)
            {
                uint expected = Runtime.Crc32C.Finish(Runtime.Crc32C.Append(Runtime.Crc32C.Append(Runtime.Crc32C.Start, TensorMetadata(name, dtype, shape)), data));
                if (reader.ReadUInt32() != expected)
                    throw new ConicException($"{path}: damaged checkpoint: tensor '{name}' fails its CRC-32C check; restore a copy or start a new --run");
            }
            return dtype == ScalarType.Float32
                ? tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data).ToArray(), shape)
                : tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(data).ToArray(), shape);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException or ArgumentException or OverflowException)
        {
            throw new ConicException($"{path}: truncated or damaged checkpoint (in tensor '{name}')");
        }
    }
}
