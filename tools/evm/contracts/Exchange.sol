// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./IERC20.sol";

/// A customer's deposit address at the exchange, of the forwarder kind: ETH sent to it
/// is passed on to the exchange's hot wallet in the same transaction (an internal
/// transfer); tokens stay until the exchange calls sweepToken.
contract DepositForwarder {
    address payable public immutable hotWallet;

    event Forwarded(address indexed from, uint256 value);
    event Swept(address indexed token, uint256 amount);

    constructor(address payable hotWallet_) {
        hotWallet = hotWallet_;
    }

    receive() external payable {
        (bool ok, ) = hotWallet.call{value: msg.value}("");
        require(ok, "forward failed");
        emit Forwarded(msg.sender, msg.value);
    }

    function sweepToken(IERC20 token) external {
        require(msg.sender == hotWallet, "only the exchange");
        uint256 amount = token.balanceOf(address(this));
        require(token.transfer(hotWallet, amount), "token transfer failed");
        emit Swept(address(token), amount);
    }
}

/// Deployed by the exchange's hot wallet; creates one forwarder per customer with
/// CREATE2 (so the deposit address is known before the contract exists).
contract ForwarderFactory {
    address payable public immutable hotWallet;

    event ForwarderCreated(address indexed forwarder, bytes32 indexed salt);

    constructor() {
        hotWallet = payable(msg.sender);
    }

    function create(bytes32 salt) external returns (address forwarder) {
        require(msg.sender == hotWallet, "only the exchange");
        forwarder = address(new DepositForwarder{salt: salt}(hotWallet));
        emit ForwarderCreated(forwarder, salt);
    }
}
