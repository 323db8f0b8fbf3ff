using Google.Protobuf;
using Tensorboard;

namespace Conic.Training;

/// <summary>
/// Writes scalar summaries as a TensorBoard event file: TorchSharp's generated Event/Summary messages, serialised by
/// Google.Protobuf, in TFRecord framing. Not TorchSharp's SummaryWriter: it stamps events with wall time 0 (or .NET
/// ticks, not Unix seconds), which breaks TensorBoard's time axes, and takes the step as an int.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    readonly FileStream _stream;

    /// <summary>Starts an event file in <paramref name="directory"/> (created if missing).</summary>
    public TensorBoardWriter(string directory)
    {
        Directory.CreateDirectory(directory);
        double now = UnixSeconds();
        string path = Path.Combine(directory, $"events.out.tfevents.{(long)now}.{Environment.MachineName}.conic");
        _stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        WriteRecord(new Event { WallTime = now, FileVersion = "brain.Event:2" }.ToByteArray());
    }

    /// <summary>Writes one scalar summary: <paramref name="tag"/> at <paramref name="step"/>.</summary>
    public void AddScalar(string tag, double value, long step)
    {
        var summary = new Summary();
        summary.Value.Add(new Summary.Types.Value { Tag = tag, SimpleValue = (float)value });
        WriteRecord(new Event { WallTime = UnixSeconds(), Step = step, Summary = summary }.ToByteArray());
    }

    /// <summary>An epoch's loss, terms, learning rate and speed under train/..., at its last step.</summary>
    public void Add(EpochMetrics metrics)
    {
        AddScalar("train/loss", metrics.Loss, metrics.Step);
        foreach (var (name, value) in metrics.Terms) AddScalar($"train/{name}", value, metrics.Step);
        AddScalar("train/lr", metrics.LearningRate, metrics.Step);
        AddScalar("train/images_per_second", metrics.ImagesPerSecond, metrics.Step);
        if (metrics.MonitorKnnTop1 is double knn) AddScalar("monitor/knn_top1", knn, metrics.Step);
        _stream.Flush();
    }

    /// <summary>Closes the event file.</summary>
    public void Dispose() => _stream.Dispose();

    static double UnixSeconds() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>TFRecord: length, its masked CRC, the data, its masked CRC.</summary>
    void WriteRecord(byte[] data)
    {
        byte[] length = BitConverter.GetBytes((ulong)data.Length);
        _stream.Write(length);
        _stream.Write(BitConverter.GetBytes(MaskedCrc(length)));
        _stream.Write(data);
        _stream.Write(BitConverter.GetBytes(MaskedCrc(data)));
    }

    /// <summary>TFRecord's CRC: CRC-32C, rotated right by 15 and offset by a constant.</summary>
    static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = Runtime.Crc32C.Compute(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }
}
