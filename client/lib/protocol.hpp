// The registrar's protocol: the SQL the client sends, and what the server's
// answers and notifications mean, as typed values. No I/O (session.hpp) and
// no state of the connection (machine.hpp): the phase machine decides what to
// send when, and what to do with what comes back.
//
// On each new connection:
//   SELECT shard_coordinator.channel($1, $2), shard_coordinator.channel($1)
//     the member's channel and the cluster's (an older extension without
//     channel(cluster) fails with 42883: then the member's alone);
//   LISTEN "<member's>"; LISTEN "<cluster's>";
// then, at the interval the server returns, the heartbeat query below, whose
// one row is parsed by parse_heartbeat_row() (payload.hpp); and on a
// graceful stop SELECT shard_coordinator.leave($1, $2, $3). $1 is the
// cluster, $2 the member; the heartbeat's $3 is the applied epoch (NULL
// before there is one) and $4 the incarnation, leave()'s $3 the incarnation.
//
// The heartbeat needs extension 1.1 (heartbeat(cluster, member,
// applied_epoch, incarnation) returning lease_remaining): against 1.0 it
// fails with 42883, which lacks_heartbeat_1_1() recognises.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "payload.hpp"
#include "session.hpp"

namespace shard_coordinator::client {

enum class QueryKind { Channels, Listen, Heartbeat, Leave };

// "channel", "LISTEN", "heartbeat", "leave": for messages.
const char *query_name(QueryKind kind);

// A query to send (see Session::send for `params`).
struct Statement {
  QueryKind kind;
  std::string sql;
  QueryParams params;
};

// The channels of one connection.
struct Channels {
  std::string member;   // the member's own changes
  std::string cluster;  // changes of num_shards; empty for an older extension
};

// Something to log at debug level and otherwise ignore.
struct Ignored {
  std::string message;
};
// Something the server sent that this client does not understand: an error
// to report (not fatal).
struct NotUnderstood {
  std::string message;
};

// A notification: nothing (not on our channels), a member notice, a cluster
// notice, one for another member or cluster, or one not understood.
using NotificationEvent =
    std::variant<std::monostate, Notice, ClusterNotice, Ignored, NotUnderstood>;

// A successful heartbeat query's answer.
using HeartbeatReply = std::variant<HeartbeatRow, NotUnderstood>;

// A new incarnation: a random positive 64-bit id (never 0, which the server
// reads as none), made once per registrar.
std::int64_t random_incarnation();

class Protocol {
 public:
  // `incarnation`: this registrar's random id, sent with every heartbeat
  // and with leave().
  Protocol(std::string cluster, std::string member, std::int64_t incarnation);

  const std::string &cluster() const { return cluster_; }
  const std::string &member() const { return member_; }
  std::int64_t incarnation() const { return incarnation_; }

  // ----- what to send -----
  // Both channel names, or the member's alone (member_only) from a server
  // without channel(cluster).
  Statement channels_query(bool member_only) const;
  // LISTEN on each of `quoted` (names already quoted as identifiers, by
  // Session::quote_identifier), in one query.
  static Statement listen_query(const std::vector<std::string> &quoted);
  // heartbeat(cluster, member, applied_epoch, incarnation): `applied_epoch`
  // nullopt sends NULL (nothing to acknowledge yet).
  Statement heartbeat_query(std::optional<std::int64_t> applied_epoch) const;
  Statement leave_query() const;

  // ----- what the answers mean -----
  // Whether a failed channels query says that the server has no
  // channel(cluster) (42883, undefined function): an extension from before
  // cluster notices, which notifies every member of a count change on its
  // own channel. If the member's channel alone fails too, the extension is
  // missing altogether.
  static bool lacks_cluster_channel(const QueryResult &failed);
  // The channel names from a successful channels query; nullopt when it
  // holds none.
  static std::optional<Channels> read_channels(const QueryResult &result,
                                               bool member_only);
  // Whether a failed heartbeat says that the server's extension is older
  // than 1.1 (42883: no heartbeat with applied_epoch and incarnation).
  static bool lacks_heartbeat_1_1(const QueryResult &failed);
  static HeartbeatReply read_heartbeat(const QueryResult &result);
  // Whether leave() removed the member (false: it was no longer one).
  static bool read_leave(const QueryResult &result);
  // What a notification says to this member, listening on `channels`.
  NotificationEvent read_notification(const Notification &notification,
                                      const Channels &channels) const;

 private:
  std::string cluster_;
  std::string member_;
  std::int64_t incarnation_;
};

}  // namespace shard_coordinator::client
