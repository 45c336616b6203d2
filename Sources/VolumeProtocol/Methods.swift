/// The methods the server answers, by their wire names (the seed's own).
public enum Method {
    public static let ping = "ping"
    public static let getMonAddrs = "get_mon_addrs"
}
