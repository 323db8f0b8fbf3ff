using Google.Protobuf;

namespace Conic.Export;

/// <summary>
/// Builds an ONNX message field by field with Google.Protobuf's encoder (there is no generated ONNX message set for
/// .NET to reference). Nested messages are built in their own writer and embedded with <see cref="Message"/>.
/// </summary>
sealed class ProtobufWriter
{
    readonly MemoryStream _buffer = new();
    readonly CodedOutputStream _output;

    public ProtobufWriter() => _output = new CodedOutputStream(_buffer, leaveOpen: true);

    public ProtobufWriter Int(int field, long value)
    {
        _output.WriteTag(field, WireFormat.WireType.Varint);
        _output.WriteInt64(value);
        return this;
    }

    public ProtobufWriter Float(int field, float value)
    {
        _output.WriteTag(field, WireFormat.WireType.Fixed32);
        _output.WriteFloat(value);
        return this;
    }

    public ProtobufWriter String(int field, string value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteString(value);
        return this;
    }

    public ProtobufWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteBytes(ByteString.CopyFrom(value));
        return this;
    }

    public ProtobufWriter Message(int field, ProtobufWriter message) => Bytes(field, message.ToArray());

    /// <summary>A repeated int64 in the packed encoding (one length-delimited field).</summary>
    public ProtobufWriter PackedInts(int field, IEnumerable<long> values)
    {
        var packed = new ProtobufWriter();
        foreach (long value in values) packed._output.WriteInt64(value);
        return Bytes(field, packed.ToArray());
    }

    public byte[] ToArray()
    {
        _output.Flush();
        return _buffer.ToArray();
    }
}
